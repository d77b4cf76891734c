"""The SparkSession options micromoments sets (no Spark started here)."""

from __future__ import annotations

from micromoments.config import SparkConfig
from micromoments.store.spark_session import local_cores, session_options


def test_local_mode_gets_two_shuffle_partitions_per_core() -> None:
    # Spark's default of 200 is 200 Python tasks in the journey kernel, minutes of overhead on one machine.
    assert session_options(SparkConfig(master="local[4]"))["spark.sql.shuffle.partitions"] == "8"
    assert local_cores("local[3,2]") == 3 and local_cores("yarn") is None


def test_a_cluster_keeps_spark_defaults_and_the_users_conf_wins() -> None:
    assert "spark.sql.shuffle.partitions" not in session_options(SparkConfig(master="spark://host:7077"))
    assert "spark.sql.shuffle.partitions" not in session_options(SparkConfig(remote="sc://host:15002"))
    mine = SparkConfig(master="local[2]", conf={"spark.sql.shuffle.partitions": 64})
    assert session_options(mine)["spark.sql.shuffle.partitions"] == "64"
