"""The demo data generator: Greenhaven, a home-and-garden retailer, as Segment JSONL + ground truth.

>>> import tempfile
>>> from micromoments.demo import generate
>>> paths = generate(tempfile.mkdtemp(), users=3, days=3, seed=1)
>>> sorted(p.name for p in paths.out_dir.iterdir())
['events.jsonl', 'stores.csv', 'truth_events.csv', 'truth_moments.csv', 'truth_personas.csv']
"""

from micromoments.demo.generator import DEFAULT_START, DemoPaths, generate
from micromoments.demo.personas import PERSONAS
from micromoments.demo.queries import FAMILIES
from micromoments.demo.stores import STORES

__all__ = ["DEFAULT_START", "DemoPaths", "FAMILIES", "PERSONAS", "STORES", "generate"]
