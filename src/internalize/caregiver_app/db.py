"""What a human-caregiver study stores: one SQLite file (``study.sqlite`` under the app's data
folder) holding the study's settings, every session, the episodes each was shown, every
judgement, each round's ISR fit and learner, and the scripted reference.

Every judgement is committed (WAL journal, ``synchronous=FULL``: on disk before the answer) as it
arrives; a session's state changes in single transactions, so a server killed at any moment
restarts with every committed judgement and each session where it was.

What does not live here: what the numbers mean (:mod:`.study`), HTTP (:mod:`.server`).
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from .. import results

FILE = "study.sqlite"
PARTICIPANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""A participant id: letters, digits, '_' and '-', at most 64 (never used in a path)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    participant TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    round INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'starting',      -- starting | watching | training | leaving | done
    shown_episode INTEGER NOT NULL DEFAULT 0,      -- the last frame shown: (episode, step); step -1: none yet
    shown_step INTEGER NOT NULL DEFAULT -1,
    result TEXT                                   -- JSON, when done
);
CREATE TABLE IF NOT EXISTS episodes (
    session INTEGER NOT NULL REFERENCES sessions(id),
    idx INTEGER NOT NULL,
    round INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session, idx)
);
CREATE TABLE IF NOT EXISTS judgements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL REFERENCES sessions(id),
    episode INTEGER NOT NULL,
    step INTEGER NOT NULL,
    value INTEGER NOT NULL,
    delay_ms REAL NOT NULL,
    received REAL NOT NULL,
    client_id TEXT,
    UNIQUE (session, client_id)
);
CREATE TABLE IF NOT EXISTS rounds (
    session INTEGER NOT NULL REFERENCES sessions(id),
    round INTEGER NOT NULL,                       -- the learner after training on round `round`'s fit
    state BLOB NOT NULL,
    isr BLOB NOT NULL,
    n_steps INTEGER NOT NULL,
    n_judged INTEGER NOT NULL,
    test_mse REAL NOT NULL,
    pearson REAL,
    curves TEXT NOT NULL,
    value_map BLOB,
    PRIMARY KEY (session, round)
);
CREATE TABLE IF NOT EXISTS blobs (name TEXT PRIMARY KEY, data BLOB NOT NULL);
"""


class StudyMismatch(ValueError):
    """The data folder holds a study made with other settings."""


class Store:
    """The study's database. One connection shared by the app's threads, behind a lock."""

    def __init__(self, folder: Path, config: dict | None):
        """Open (or create) the study in ``folder``; ``config``: the study's settings, which must be
        those it was made with (None: take the stored study as it is)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FILE
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.conn.row_factory = sqlite3.Row
        with self.lock:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            row = self.conn.execute("SELECT value FROM meta WHERE key='study'").fetchone()
            text = json.dumps(config, sort_keys=True)
            if config is None:
                pass
            elif row is None:
                self.conn.execute("INSERT INTO meta VALUES ('study', ?)", (text,))
            elif json.loads(row["value"]) != json.loads(text):
                stored = json.loads(row["value"])
                diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
                raise StudyMismatch(f"{str(self.path)!r} holds a study with other settings ({', '.join(diff)}); "
                                    "use another --data folder")

    @classmethod
    def open_existing(cls, folder: Path) -> "Store":
        return cls(folder, None)

    @staticmethod
    def stored_study(folder: Path) -> dict | None:
        """The settings a study folder was made with (None: no study there)."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='study'").fetchone()
        except sqlite3.DatabaseError:
            return None
        finally:
            conn.close()
        return None if row is None else json.loads(row[0])

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def _tx(self):
        return _Transaction(self)

    # -- sessions --------------------------------------------------------------------------
    def session(self, sid: int) -> dict | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM sessions WHERE id=?", (sid,)).fetchone()
        return dict(row) if row else None

    def session_of(self, participant: str) -> dict | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM sessions WHERE participant=?", (participant,)).fetchone()
        return dict(row) if row else None

    def sessions(self) -> list[dict]:
        with self.lock:
            return [dict(r) for r in self.conn.execute("SELECT * FROM sessions ORDER BY id")]

    def create(self, participant: str) -> dict:
        """A new session, ``starting`` until its first round's episodes are stored (:meth:`start`)."""
        with self._tx() as c:
            cur = c.execute("INSERT INTO sessions (participant, created, status) VALUES (?, ?, 'starting')",
                            (participant, time.time()))
            sid = cur.lastrowid
        return self.session(sid)

    def start(self, sid: int, episodes: list[dict]) -> None:
        """A starting session's first round's episodes; it is then ``watching``."""
        with self._tx() as c:
            for i, ep in enumerate(episodes):
                c.execute("INSERT OR REPLACE INTO episodes VALUES (?, ?, 0, ?)", (sid, i, json.dumps(ep)))
            c.execute("UPDATE sessions SET status='watching' WHERE id=? AND status='starting'", (sid,))

    def episode(self, sid: int, idx: int) -> dict | None:
        with self.lock:
            row = self.conn.execute("SELECT round, data FROM episodes WHERE session=? AND idx=?", (sid, idx)).fetchone()
        return None if row is None else {"round": row["round"], **json.loads(row["data"])}

    def episodes(self, sid: int, through_round: int) -> list[dict]:
        with self.lock:
            rows = self.conn.execute("SELECT data FROM episodes WHERE session=? AND round<=? ORDER BY idx",
                                     (sid, through_round)).fetchall()
        return [json.loads(r["data"]) for r in rows]

    def set_shown(self, sid: int, episode: int, step: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE sessions SET shown_episode=?, shown_step=? WHERE id=?", (episode, step, sid))

    def set_status(self, sid: int, status: str, expect: str | None = None) -> bool:
        """Set a session's status (only from ``expect`` when given); whether it changed."""
        with self._tx() as c:
            if expect is None:
                cur = c.execute("UPDATE sessions SET status=? WHERE id=?", (status, sid))
            else:
                cur = c.execute("UPDATE sessions SET status=? WHERE id=? AND status=?", (status, sid, expect))
            return cur.rowcount == 1

    # -- judgements ------------------------------------------------------------------------
    def add_judgement(self, sid: int, episode: int, step: int, value: int, delay_ms: float,
                      client_id: str | None) -> tuple[int, bool]:
        """Commit a judgement; ``(id, new)``: a retried one (same ``client_id``) is stored once."""
        with self._tx() as c:
            if client_id is not None:
                row = c.execute("SELECT id FROM judgements WHERE session=? AND client_id=?", (sid, client_id)).fetchone()
                if row is not None:
                    return int(row["id"]), False
            cur = c.execute("INSERT INTO judgements (session, episode, step, value, delay_ms, received, client_id) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (sid, episode, step, value, delay_ms, time.time(), client_id))
            return int(cur.lastrowid), True

    def judgements(self, sid: int | None = None) -> list[dict]:
        with self.lock:
            if sid is None:
                rows = self.conn.execute("SELECT * FROM judgements ORDER BY id").fetchall()
            else:
                rows = self.conn.execute("SELECT * FROM judgements WHERE session=? ORDER BY id", (sid,)).fetchall()
        return [dict(r) for r in rows]

    def latest_judgements(self, sid: int) -> dict[tuple[int, int], int]:
        """Each judged step's latest judgement (the person may change their mind)."""
        out: dict[tuple[int, int], int] = {}
        for j in self.judgements(sid):
            out[(j["episode"], j["step"])] = j["value"]
        return out

    def counts(self, sid: int) -> dict:
        with self.lock:
            row = self.conn.execute("SELECT COUNT(*) n, SUM(value>0) praise, SUM(value<0) disapproval "
                                    "FROM judgements WHERE session=?", (sid,)).fetchone()
        return {"judgements": row["n"], "praise": row["praise"] or 0, "disapproval": row["disapproval"] or 0}

    # -- rounds ----------------------------------------------------------------------------
    def finish_round(self, sid: int, round_: int, state: bytes, isr: bytes, fit, curves: dict, value_map: bytes | None,
                     next_episodes: list[dict] | None) -> None:
        """A round trained: its learner and fit; then the next round's episodes (status watching),
        or, after the last round, status leaving. One transaction."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (sid, round_, state, isr, fit.n_steps, fit.n_judged, fit.test_mse,
                       None if not np.isfinite(fit.pearson) else fit.pearson,
                       json.dumps({k: np.asarray(v).tolist() for k, v in curves.items()}), value_map))
            if next_episodes is None:
                c.execute("UPDATE sessions SET status='leaving' WHERE id=?", (sid,))
                return
            first = (round_ + 1) * len(next_episodes)
            for i, ep in enumerate(next_episodes):
                c.execute("INSERT OR REPLACE INTO episodes VALUES (?, ?, ?, ?)", (sid, first + i, round_ + 1, json.dumps(ep)))
            c.execute("UPDATE sessions SET round=?, status='watching', shown_episode=?, shown_step=-1 WHERE id=?",
                      (round_ + 1, first, sid))

    def rounds(self, sid: int) -> list[dict]:
        with self.lock:
            rows = self.conn.execute("SELECT round, state, isr, n_steps, n_judged, test_mse, pearson, curves "
                                     "FROM rounds WHERE session=? ORDER BY round", (sid,)).fetchall()
        return [dict(r, curves=json.loads(r["curves"])) for r in rows]

    def latest_fit(self, sid: int) -> dict | None:
        """The latest round's fit numbers (no blobs): n_steps, n_judged, test_mse, pearson."""
        with self.lock:
            row = self.conn.execute("SELECT round, n_steps, n_judged, test_mse, pearson FROM rounds WHERE session=? "
                                    "ORDER BY round DESC LIMIT 1", (sid,)).fetchone()
        return None if row is None else dict(row)

    def value_map(self, sid: int) -> bytes | None:
        with self.lock:
            row = self.conn.execute("SELECT value_map FROM rounds WHERE session=? AND value_map IS NOT NULL "
                                    "ORDER BY round DESC LIMIT 1", (sid,)).fetchone()
        return None if row is None else bytes(row["value_map"])

    def done(self, sid: int, result: dict) -> None:
        with self._tx() as c:
            c.execute("UPDATE sessions SET status='done', result=? WHERE id=?", (json.dumps(result), sid))

    # -- blobs -----------------------------------------------------------------------------
    def blob(self, name: str) -> bytes | None:
        with self.lock:
            row = self.conn.execute("SELECT data FROM blobs WHERE name=?", (name,)).fetchone()
        return None if row is None else bytes(row["data"])

    def set_blob(self, name: str, data: bytes) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?)", (name, data))

    # -- export ----------------------------------------------------------------------------
    def export(self, path: Path) -> int:
        """Every judgement of every session as one Parquet table (a row per judgement, with the
        step it judged); returns the rows written."""
        sessions = {s["id"]: s for s in self.sessions()}
        rows = self.judgements()
        cache: dict[tuple[int, int], dict | None] = {}
        cols: dict[str, list] = {k: [] for k in (
            "session", "participant", "round", "episode", "step", "value", "delay_ms", "received", "action", "coin",
            "x", "y", "dir", "goal_x", "goal_y")}
        for j in rows:
            key = (j["session"], j["episode"])
            if key not in cache:
                cache[key] = self.episode(*key)
            ep = cache[key]
            step = ep["steps"][j["step"]] if ep and 0 <= j["step"] < len(ep["steps"]) else None
            cols["session"].append(j["session"])
            cols["participant"].append(sessions[j["session"]]["participant"])
            cols["round"].append(ep["round"] if ep else -1)
            for k in ("episode", "step", "value", "delay_ms", "received"):
                cols[k].append(j[k])
            cols["action"].append(step["action"] if step else -1)
            cols["coin"].append(bool(step["coin"]) if step else False)
            cols["x"].append(step["pos"][0] if step else -1)
            cols["y"].append(step["pos"][1] if step else -1)
            cols["dir"].append(step["dir"] if step else -1)
            cols["goal_x"].append(step["goal"][0] if step else -1)
            cols["goal_y"].append(step["goal"][1] if step else -1)
        types = {"participant": object, "delay_ms": np.float64, "received": np.float64, "coin": bool}
        results.write_parquet(Path(path), {k: np.asarray(v, dtype=types.get(k, np.int64)) for k, v in cols.items()})
        return len(rows)


class _Transaction:
    """``with store._tx() as conn``: BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), under the lock."""

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store.lock.acquire()
        self.store.conn.execute("BEGIN IMMEDIATE")
        return self.store.conn

    def __exit__(self, kind, value, tb) -> None:
        try:
            self.store.conn.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            self.store.lock.release()
