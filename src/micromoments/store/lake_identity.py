"""Identity stitching as Spark jobs: connected components of the id links, by label propagation.

The same rule as `identity.resolve_people`: every id that met is one person, and a component's
`person_id` is its smallest user id, or its smallest anonymous id when nobody logged in (a user id
is the right-hand side of some link). Each id starts with its own label ("0" + id for a user id,
"1" + id otherwise, so the smallest label is the person); each round every id takes the smallest
label among its neighbours, until no label changes (rounds = the longest shortest path in a
component, a few for real identity graphs).

>>> # write_identities(store)  # reads <lake>/identity_links, writes <lake>/identities
"""

from __future__ import annotations

from typing import Any

MAX_ROUNDS = 64


def identities_frame(links: Any) -> Any:
    """`identities` (id, id_type, person_id) from a Spark DataFrame of links (a, b)."""
    from pyspark.sql import functions as F

    links = links.select("a", "b").where(F.col("a").isNotNull() & F.col("b").isNotNull()).distinct()
    users = links.select(F.col("b").alias("id")).distinct().withColumn("user", F.lit(True))
    nodes = (links.select(F.col("a").alias("id")).union(links.select(F.col("b").alias("id"))).distinct()
             .join(users, "id", "left"))
    labels = nodes.select("id", F.concat(F.when(F.col("user"), "0").otherwise("1"), "id").alias("label")).cache()
    edges = links.select(F.col("a").alias("src"), F.col("b").alias("dst")).union(
        links.select(F.col("b").alias("src"), F.col("a").alias("dst"))).cache()
    for _ in range(MAX_ROUNDS):  # one Spark job a round: the count of changed labels
        best = (edges.join(labels.withColumnRenamed("id", "dst"), "dst")
                .groupBy("src").agg(F.min("label").alias("near")).withColumnRenamed("src", "id"))
        moved = (labels.join(best, "id", "left")
                 .select("id", F.least("label", F.coalesce("near", "label")).alias("label"),
                         (F.col("near") < F.col("label")).alias("changed"))
                 .cache())
        changed = moved.where("changed").count()
        labels.unpersist()
        labels = moved.select("id", "label")
        if changed == 0:
            break
    edges.unpersist()
    out = labels.join(nodes, "id").select(
        "id", F.when(F.col("user"), "user").otherwise("anonymous").alias("id_type"),
        F.expr("substring(label, 2)").alias("person_id"))
    return out


def write_identities(store: Any) -> int:
    """Recompute `<lake>/identities` from `<lake>/identity_links`; returns the ids resolved."""
    if "identity_links" not in store._present:
        return 0
    frame = identities_frame(store.spark.read.parquet(store.url("identity_links"))).cache()
    n = frame.count()
    store.write_table("identities", frame)
    frame.unpersist()
    return int(n)
