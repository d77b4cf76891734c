"""Survey / CRM import (bad rows, email hashing), rule segments and incremental persona assignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import events_frame
from micromoments.config import Config
from micromoments.errors import ConfigError, InputError
from micromoments.personas.clustering import PersonaModel
from micromoments.personas.segments import parse_rule
from micromoments.personas.survey import declared_features, hash_email, import_survey
from micromoments.store import Store

SALT = "test-salt-7f3a"


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    rows = [
        {"person_id": "u1", "user_id": "u1", "ts": "2026-03-01 10:00", "type": "identify",
         "traits": '{"email": "Ann.Smith@Example.org"}'},
        {"person_id": "u1", "user_id": "u1", "ts": "2026-03-01 10:05", "event": "Products Searched"},
        {"person_id": "u2", "user_id": "u2", "ts": "2026-03-02 11:00", "type": "identify",
         "traits": '{"email": "bob@example.com"}'},
    ]
    frame = events_frame(rows, with_moments=False)
    st.duck.register("_ev", frame)
    st.duck.execute("INSERT INTO events SELECT * FROM _ev")
    st.duck.execute("INSERT INTO identities VALUES ('u1', 'user', 'u1'), ('u2', 'user', 'u2')")
    yield st
    st.close()


def _cfg(raw: bool = False) -> Config:
    cfg = Config()
    cfg.personas.email_salt = SALT
    cfg.personas.store_raw_email = raw
    return cfg


def test_email_survey_is_hashed_matched_and_bad_rows_quarantined(store, tmp_path):
    csv = tmp_path / "survey.csv"
    csv.write_text(
        "email,age_band,goal,fear\n"
        " ann.smith@example.org ,35-44,renovate the garden,wasting money\n"   # line 2: matches u1
        "not-an-email,25-34,x,y\n"                                           # line 3: bad key
        "bob@example.com,45-54,fix the fence\n"                              # line 4: 3 cells
        ",55+,a,b\n"                                                          # line 5: empty key
        "carol@example.net,18-24,first flat,\n",                              # line 6: unknown person
        encoding="utf-8")
    res = import_survey(store, csv, key="email", config=_cfg())
    assert (res.rows, res.imported_rows, res.quarantined, res.matched_people) == (5, 2, 3, 1)
    answers = store.duck.execute("SELECT person_id, email_hash, email, field, value FROM survey_answers "
                                 "ORDER BY line, field").df()
    assert set(answers.field) == {"age_band", "goal", "fear"}
    assert answers.email.isna().all()  # never stored raw by default
    ann = answers[answers.person_id == "u1"]
    assert set(ann.email_hash) == {hash_email("ann.smith@example.org", SALT)}
    assert answers[answers.person_id.isna()].field.tolist() == ["age_band", "goal"]  # carol: empty fear skipped
    q = store.duck.execute("SELECT line, field, reason, raw FROM quarantine ORDER BY line").df()
    assert q.line.tolist() == [3, 4, 5]
    assert q.reason.tolist() == ["not an email address", "3 cells, the header has 4", "empty email"]
    # The quarantined raw text carries no readable email address.
    dump = " ".join(q.raw) + " ".join(store.duck.execute("SELECT value FROM survey_answers").df().value)
    assert "bob@example.com" not in dump and "carol@" not in dump
    wide = declared_features(store)
    assert wide.set_index("person_id").loc["u1", "survey_goal"] == "renovate the garden"


def test_raw_email_kept_only_when_configured(store, tmp_path):
    csv = tmp_path / "crm.csv"
    csv.write_text("email,segment\nbob@example.com,gold\n", encoding="utf-8")
    import_survey(store, csv, key="email", config=_cfg(raw=True))
    row = store.duck.execute("SELECT person_id, email, email_hash FROM survey_answers").fetchone()
    assert row == ("u2", "bob@example.com", hash_email("bob@example.com", SALT))


def test_user_id_key_strict_mode_and_missing_salt(store, tmp_path):
    csv = tmp_path / "crm.csv"
    csv.write_text("user_id,email,tier\nu1,ann.smith@example.org,gold\n,x@y.z,silver\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"crm.csv:3: empty user_id"):
        import_survey(store, csv, key="user_id", config=_cfg(), on_bad="error")
    res = import_survey(store, csv, key="user_id", config=_cfg())
    assert res.matched_people == 1 and res.quarantined == 1
    stored = store.duck.execute("SELECT field, value FROM survey_answers ORDER BY field").fetchall()
    assert stored == [("email_hash", hash_email("ann.smith@example.org", SALT)), ("tier", "gold")]
    with pytest.raises(ConfigError, match="email_salt"):
        import_survey(store, csv, key="email", config=Config())
    with pytest.raises(InputError, match="no 'email' column"):
        bad = tmp_path / "nokey.csv"
        bad.write_text("name,tier\nx,y\n", encoding="utf-8")
        import_survey(store, bad, key="email", config=_cfg())


def test_hash_is_salted_and_normalised():
    assert hash_email("A@B.co ", "s1") == hash_email("a@b.co", "s1")
    assert hash_email("a@b.co", "s1") != hash_email("a@b.co", "s2")
    with pytest.raises(ConfigError):
        hash_email("a@b.co", "")


def _people(rng: np.random.Generator, n: int, centre: dict[str, float]) -> pd.DataFrame:
    cols = {c: np.clip(rng.normal(v, 0.08, n), 0, 1) for c, v in centre.items()}
    return pd.DataFrame(cols).assign(episodes=12, sessions=6, events=40)


def test_incremental_assignment_uses_nearest_centroid_and_moves_nobody_else():
    rng = np.random.default_rng(5)
    a = _people(rng, 120, {"moment_buy": 0.8, "moment_do": 0.1, "device_mobile": 0.9})
    b = _people(rng, 120, {"moment_buy": 0.1, "moment_do": 0.7, "device_mobile": 0.2})
    c = _people(rng, 120, {"moment_buy": 0.3, "moment_do": 0.3, "device_mobile": 0.5})
    feats = pd.concat([a, b, c], ignore_index=True)
    model = PersonaModel("auto").fit(feats)
    assert model.k_ == 3
    before = model.predict(feats)
    newcomer = _people(rng, 1, {"moment_buy": 0.1, "moment_do": 0.75, "device_mobile": 0.15})
    label = model.predict(newcomer)[0]
    assert label == np.bincount(before[120:240]).argmax()  # joins the do-moment group
    d = model.distances(newcomer)[0]
    assert d.argmin() == label
    # A person with little evidence is shrunk toward the middle, not thrown to an extreme.
    thin = newcomer.assign(sessions=1, episodes=1, events=2)
    assert model.distances(thin)[0].min() <= d.max()
    np.testing.assert_array_equal(model.predict(feats), before)


def test_manual_k_override_and_bad_k():
    rng = np.random.default_rng(2)
    feats = _people(rng, 200, {"moment_buy": 0.5, "moment_do": 0.5})
    assert PersonaModel(4).fit(feats).k_ == 4
    with pytest.raises(InputError):
        PersonaModel("many")


def test_rule_parsing_errors_name_the_condition():
    assert parse_rule("moment:buy<=7d & !purchase<=7d").conditions[1].negate
    with pytest.raises(InputError, match="cannot read condition 'bought yesterday'"):
        parse_rule("x=bought yesterday")
