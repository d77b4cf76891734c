"""Buyer personas: behavioural features, CLV (BG/NBD + Gamma-Gamma), clustering, names, segments.

Modules: `features` (Ibis features per person), `clv`, `survey` (declared data), `clustering`
(`PersonaModel`), `describe` (plain-words names), `segments` (exports, rules, incremental
assignment) and `build` (the whole pipeline into the store).
"""
