"""Journey analytics: sessions, moment episodes, stages, journey map, paths, funnels, peak times,
FAQ themes, touchpoints and keyword research.

Batch analytics are Ibis expressions (tables in, tables out), so the same code runs on DuckDB
and on Spark. Clustering and statistical tests run in pandas on the small aggregated results.
"""

from micromoments.journey.episodes import episodes
from micromoments.journey.maps import journey_map, path_links, top_paths
from micromoments.journey.moments import events_with_moments, without_moments
from micromoments.journey.sessions import sessionize, sessions
from micromoments.journey.stages import (
    DEFAULT_STAGE_RULES,
    STAGES,
    assign_stages,
    session_features,
)
from micromoments.journey.vocab import EventVocabulary

__all__ = [
    "DEFAULT_STAGE_RULES", "STAGES", "EventVocabulary", "assign_stages", "episodes",
    "events_with_moments", "journey_map", "path_links", "session_features", "sessionize",
    "sessions", "top_paths", "without_moments",
]
