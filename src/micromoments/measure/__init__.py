"""Measure and improve: metrics, experiments, attribution, monitoring, off-policy evaluation.

| module          | what it does                                                                  |
|-----------------|-------------------------------------------------------------------------------|
| `stats`         | Wilson, Welch, chi-square, two-proportion z, delta method, mSPRT (numpy/scipy) |
| `metrics`       | Ibis expressions: exposures/CTR/conversion/revenue by moment, stage, channel…  |
| `experiments`   | hash assignment (live + batch), analysis with CUPED, sequential tests, SRM, power |
| `attribution`   | heuristic models, exact Markov removal effect, Shapley values                 |
| `monitoring`    | daily seasonal-baseline alerts, moment-mix and classifier-confidence drift     |
| `ope`           | IPW, SNIPW and doubly-robust policy values with bootstrap intervals           |

Nothing here imports server/, report/ or cli/. See docs/measure.md.
"""
