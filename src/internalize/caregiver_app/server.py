"""The caregiver app: an ASGI app (Starlette, served by uvicorn) where a person socializes a
learner, and a researcher's page over the study's sessions.

Pages: ``/`` (the participant's), ``/study`` (the researcher's). The HTTP API is JSON under
``/api``; a bad request gets a 4xx answer ``{"error": "<one line>"}`` and changes nothing.

Work that takes seconds (fitting the ISR, training the learner, autonomy, the results folder,
the scripted reference) runs on one worker thread, in order; requests never wait for it. On
start the app picks up every session where it was (a session caught training is trained again:
its numbers are a pure function of its seed and its stored judgements).

What does not live here: the numbers (:mod:`.study`), the stored data (:mod:`.db`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import queue
import tempfile
import threading
import traceback
from pathlib import Path

import jax
import numpy as np
from flax import serialization
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import figures
from ..worlds import coin
from . import db, study

STATIC = Path(__file__).with_name("static")
MAX_BODY = 4096
"""Bytes of a request body at most (a judgement is about 100)."""
MAX_DELAY_MS = 600_000.0
log = logging.getLogger("internalize.caregiver_app")


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class CaregiverApp:
    """The app's state: the study's settings, its store, its compiled programs and its worker."""

    def __init__(self, data: Path, cfg: study.StudyConfig, engine: study.Engine | None = None):
        self.cfg = cfg
        self.data = Path(data)
        self.store = db.Store(self.data, json.loads(json.dumps(dataclasses.asdict(cfg))))
        self.engine = engine or study.Engine(cfg)
        self.results = self.data / "results"
        self.jobs: queue.Queue = queue.Queue()
        self.progress: dict[int, float] = {}
        self.errors: dict[int, str] = {}
        self._queued: set = set()
        self._qlock = threading.Lock()
        self._reference: study.Outcome | None = None
        self._worker = threading.Thread(target=self._work, name="caregiver-app-worker", daemon=True)
        self._stop = threading.Event()

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker; pick up every session where it was. (The scripted reference is made
        when a session first needs it, then kept in the study's database.)"""
        self._worker.start()
        for s in self.store.sessions():
            if s["status"] == "starting":
                self._ensure_started(s)
            elif s["status"] in ("training", "leaving"):
                self.queue(("session", s["id"]))

    def stop(self) -> None:
        self._stop.set()
        self.jobs.put(None)
        if self._worker.is_alive():
            self._worker.join(timeout=60)

    def queue(self, job: tuple) -> None:
        with self._qlock:
            if job in self._queued:
                return
            self._queued.add(job)
        self.jobs.put(job)

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self.jobs.get()
            if job is None:
                return
            with self._qlock:
                self._queued.discard(job)
            try:
                if job[0] == "reference":
                    self.reference()
                else:
                    self._advance(job[1])
            except Exception as e:  # a failed job is shown on the session; the app goes on
                log.error("job %s failed: %s", job, traceback.format_exc())
                if job[0] == "session":
                    self.errors[job[1]] = f"{type(e).__name__}: {e}"

    # -- sessions --------------------------------------------------------------------------
    def _ensure_started(self, s: dict) -> None:
        if s["status"] == "starting":
            state = self.engine.new_state(s["id"])
            self.store.start(s["id"], self.engine.show(state.params, s["id"], 0))

    def open_session(self, participant: str) -> tuple[dict, bool]:
        if not isinstance(participant, str) or not db.PARTICIPANT.match(participant):
            raise BadRequest(422, "participant must be 1-64 letters, digits, '_' or '-'")
        s = self.store.session_of(participant)
        new = s is None
        if new:
            try:
                s = self.store.create(participant)
            except db.sqlite3.IntegrityError:  # created by a simultaneous request
                s, new = self.store.session_of(participant), False
        self._ensure_started(s)
        return self.view(s["id"]), new

    def session_or_404(self, sid: int) -> dict:
        s = self.store.session(sid)
        if s is None:
            raise BadRequest(404, f"no session {sid}")
        return s

    def view(self, sid: int) -> dict:
        s = self.session_or_404(sid)
        cfg = self.cfg
        out = {"id": s["id"], "participant": s["participant"], "status": s["status"], "round": s["round"],
               "rounds": cfg.rounds, "episodes_per_round": cfg.episodes_per_round,
               "shown": {"episode": s["shown_episode"], "step": s["shown_step"]},
               "progress": self.progress.get(sid, 0.0) if s["status"] in ("training", "leaving") else None,
               "error": self.errors.get(sid), **self.store.counts(sid)}
        if s["result"]:
            out["result"] = json.loads(s["result"])
        return out

    def episode(self, sid: int, idx: int) -> dict:
        s = self.session_or_404(sid)
        ep = self.store.episode(sid, idx)
        if ep is None or idx > s["shown_episode"] + 1:
            raise BadRequest(404, f"session {sid} has no episode {idx} to show")
        return {"index": idx, **ep}

    def _current(self, s: dict, episode, step, what: str) -> dict:
        """The episode of the current round a request names, checked."""
        if s["status"] != "watching":
            raise BadRequest(409, f"session {s['id']} is {s['status']}, not watching episodes")
        ep = self.store.episode(s["id"], episode)
        if ep is None:
            raise BadRequest(404, f"session {s['id']} has no episode {episode}")
        if ep["round"] != s["round"]:
            raise BadRequest(409, f"episode {episode} is not in the current round ({s['round']}); {what} closed")
        if not 0 <= step < len(ep["steps"]):
            raise BadRequest(422, f"step must be in 0..{len(ep['steps']) - 1}, got {step}")
        return ep

    def shown(self, sid: int, episode: int, step: int) -> dict:
        s = self.session_or_404(sid)
        self._current(s, episode, step, "showing is")
        if (episode, step) < (s["shown_episode"], s["shown_step"]):
            raise BadRequest(409, f"episode {episode} step {step} comes before the last frame shown "
                                  f"({s['shown_episode']}, {s['shown_step']})")
        self.store.set_shown(sid, episode, step)
        return {"episode": episode, "step": step}

    def judge(self, sid: int, episode: int, step: int, value: int, delay_ms: float, client_id) -> tuple[dict, bool]:
        s = self.session_or_404(sid)
        if value not in (1, -1):
            raise BadRequest(422, f"value must be 1 (praise) or -1 (disapproval), got {value}")
        if not (math.isfinite(delay_ms) and 0 <= delay_ms <= MAX_DELAY_MS):
            raise BadRequest(422, f"delay_ms must be in 0..{MAX_DELAY_MS:.0f}, got {delay_ms}")
        if client_id is not None and (not isinstance(client_id, str) or not 1 <= len(client_id) <= 64):
            raise BadRequest(422, "client_id must be a string of 1-64 characters")
        self._current(s, episode, step, "judging is")
        if (episode, step) > (s["shown_episode"], s["shown_step"]):
            raise BadRequest(422, f"episode {episode} step {step} has not been shown yet "
                                  f"(last shown: episode {s['shown_episode']} step {s['shown_step']})")
        jid, new = self.store.add_judgement(sid, episode, step, value, float(delay_ms), client_id)
        return {"id": jid, "episode": episode, "step": step, "value": value}, new

    def round_done(self, sid: int) -> dict:
        s = self.session_or_404(sid)
        if s["status"] != "watching":
            raise BadRequest(409, f"session {sid} is {s['status']}, not watching episodes")
        last = (s["round"] + 1) * self.cfg.episodes_per_round - 1
        if (s["shown_episode"], s["shown_step"]) != (last, self.engine.max_steps - 1):
            raise BadRequest(409, f"round {s['round']} is not over: episode {last} step {self.engine.max_steps - 1} "
                                  "has not been shown")
        if self.store.set_status(sid, "training", expect="watching"):
            self.progress[sid] = 0.0
            self.queue(("session", sid))
        return self.view(sid)

    # -- the worker's jobs -------------------------------------------------------------------
    def reference(self) -> study.Outcome:
        """The scripted caregiver's learner under the same protocol (made once per study)."""
        if self._reference is None:
            data = self.store.blob("reference")
            if data is None:
                out, _ = study.simulate(self.engine, study.REFERENCE_SEED)
                self.store.set_blob("reference", study.outcome_bytes(out))
                data = self.store.blob("reference")
            self._reference = study.outcome_from(data)
        return self._reference

    def _advance(self, sid: int) -> None:
        s = self.store.session(sid)
        if s["status"] == "training":
            self._train_round(s)
        elif s["status"] == "leaving":
            self._leave(s)

    def _progress(self, sid: int, total: int):
        def tick(n: int) -> None:
            self.progress[sid] = min(1.0, self.progress.get(sid, 0.0) + n / max(total, 1))
        return tick

    def _train_round(self, s: dict) -> None:
        sid, r, cfg, eng = s["id"], s["round"], self.cfg, self.engine
        shown = self.store.episodes(sid, r)
        lengths = [len(e["steps"]) for e in shown]
        targets = study.targets_of(cfg, sum(lengths), self.store.latest_judgements(sid), lengths)
        fit = eng.fit(sid, r, shown, targets)
        earlier = self.store.rounds(sid)
        state = eng.state_from(sid, earlier[-1]["state"]) if r > 0 else eng.new_state(sid)
        self.progress[sid] = 0.0
        state, curves = eng.train(state, sid, r, fit.params, cfg.round_steps, self._progress(sid, cfg.round_steps))
        png = self._value_map_png(sid, fit.params, f"after round {r + 1}")
        nxt = eng.show(state.params, sid, r + 1) if r + 1 < cfg.rounds else None
        self.store.finish_round(sid, r, eng.state_bytes(state), serialization.to_bytes(fit.params), fit, curves, png, nxt)
        if nxt is None:
            self._leave(self.store.session(sid))

    def _leave(self, s: dict) -> None:
        sid, cfg, eng = s["id"], self.cfg, self.engine
        rounds = self.store.rounds(sid)
        last = rounds[-1]
        state = eng.state_from(sid, last["state"])
        fit = study.Fit(eng.isr_from(last["isr"]), last["n_steps"], last["n_judged"],
                        last["test_mse"], float("nan") if last["pearson"] is None else last["pearson"])
        soc = [{k: np.asarray(v, np.float32) for k, v in r["curves"].items()} for r in rounds]
        self.progress[sid] = 0.0
        reference = self.reference()
        outcome = study.finish(eng, state, sid, fit, soc, self._progress(sid, cfg.autonomy_steps))
        counts = self.store.counts(sid)
        folder = self.results / f"session-{sid}"
        summary = study.write_results(folder, eng, sid, outcome, reference, fit,
                                      {"participant": s["participant"], "session": sid, **counts})
        before = float(outcome.goals_before.mean())
        after = float(outcome.goals_after.mean())
        result = {"goals_before": before, "goals_after": after, "goals_scripted": float(reference.goals_after.mean()),
                  "persistence": after / before if before > 0 else None,
                  "isr_test_mse": fit.test_mse, "isr_pearson": fit.pearson if math.isfinite(fit.pearson) else None,
                  "eval_episodes": cfg.eval_episodes, "folder": str(folder),
                  "claims": [{k: c[k] for k in ("id", "holds", "value", "p_value")} for c in summary["claims"]],
                  "after_episode": eng.show(outcome.params_after, sid, cfg.rounds, greedy=True, n=1)[0]}
        self.store.done(sid, _finite(result))

    def _value_map_png(self, sid: int, isr_params, when: str) -> bytes:
        vm = self.engine.value_map(jax.tree.map(lambda x: np.asarray(x)[None], isr_params))
        layout = {k[len("layout/"):]: np.asarray(v)[None] for k, v in vm.items() if k.startswith("layout/")}
        background = self.engine.world.render(layout, 0, tile=24)
        with tempfile.TemporaryDirectory(dir=self.data) as tmp:
            path = figures.value_maps(Path(tmp) / "value_map.png", background, 24,
                                      [("scripted caregiver", vm["true"][0]), ("this person's ISR", vm["pred"][0])],
                                      f"Session {sid} {when}: reward of stepping into each cell from each side")
            return path.read_bytes()

    # -- the researcher's view ----------------------------------------------------------------
    def study_rows(self) -> list[dict]:
        """A row per session, from the database's small columns only (the page asks every 10 s)."""
        rows = []
        for s in self.store.sessions():
            counts = self.store.counts(s["id"])
            fit = self.store.latest_fit(s["id"])
            # Steps shown so far: every episode runs to truncation, and the pointer names the last frame.
            shown = s["shown_episode"] * self.engine.max_steps + s["shown_step"] + 1
            result = json.loads(s["result"]) if s["result"] else {}
            rows.append({"id": s["id"], "participant": s["participant"], "status": s["status"],
                         "round": s["round"], **counts, "shown_steps": shown,
                         "praise_rate": counts["praise"] / shown if shown else None,
                         "disapproval_rate": counts["disapproval"] / shown if shown else None,
                         "isr_test_mse": fit["test_mse"] if fit else None, "isr_pearson": fit["pearson"] if fit else None,
                         "persistence": result.get("persistence"), "goals_after": result.get("goals_after"),
                         "goals_scripted": result.get("goals_scripted"),
                         "value_map": f"/api/sessions/{s['id']}/value_map.png" if fit else None})
        return rows


def _finite(obj):
    """JSON-able data with every non-finite number as null (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# ---------------------------------------------------------------------------------------------
# HTTP


async def _body(request: Request, empty_ok: bool = False) -> dict:
    """The request's JSON object, at most :data:`MAX_BODY` bytes (``empty_ok``: or no body)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise BadRequest(413, f"request body over {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(413, f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
    if empty_ok and not b"".join(chunks).strip():
        return {}
    try:
        obj = json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "request body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise BadRequest(400, "request body must be a JSON object")
    return obj


def _field(obj: dict, name: str, kind, default=..., allowed: set | None = None):
    if name not in obj:
        if default is ...:
            raise BadRequest(422, f"missing field {name!r}")
        return default
    v = obj[name]
    ok = isinstance(v, kind) and not isinstance(v, bool) if kind in (int, (int, float)) else isinstance(v, kind)
    if not ok:
        want = {int: "an integer", (int, float): "a number", str: "a string"}.get(kind, str(kind))
        raise BadRequest(422, f"field {name!r} must be {want}")
    return v


def _check_fields(obj: dict, known: set) -> None:
    extra = sorted(set(obj) - known)
    if extra:
        raise BadRequest(422, f"unknown field {extra[0]!r}")


def build(app_state: CaregiverApp) -> Starlette:
    """The ASGI app over a :class:`CaregiverApp`."""
    A = app_state

    def handler(fn):
        async def wrapped(request: Request):
            try:
                return await fn(request)
            except BadRequest as e:
                return _error(e.status, e.message)
        return wrapped

    def sid_of(request: Request) -> int:
        return int(request.path_params["sid"])

    async def page(request: Request):
        return FileResponse(STATIC / "participant.html")

    async def study_page(request: Request):
        return FileResponse(STATIC / "study.html")

    async def config(request: Request):
        return JSONResponse({"study": dataclasses.asdict(A.cfg), "world": {
            "width": A.engine.wp.width, "max_steps": A.engine.max_steps, "colors": coin._COLORS,
            "actions": list(A.engine.world.action_names)}})

    async def open_session(request: Request):
        body = await _body(request)
        _check_fields(body, {"participant"})
        view, new = await run_in_threadpool(A.open_session, _field(body, "participant", str))
        return JSONResponse(view, status_code=201 if new else 200)

    async def get_session(request: Request):
        return JSONResponse(_finite(await run_in_threadpool(A.view, sid_of(request))))

    async def get_episode(request: Request):
        return JSONResponse(await run_in_threadpool(A.episode, sid_of(request), int(request.path_params["idx"])))

    async def post_shown(request: Request):
        body = await _body(request)
        _check_fields(body, {"episode", "step"})
        return JSONResponse(await run_in_threadpool(A.shown, sid_of(request), _field(body, "episode", int),
                                                    _field(body, "step", int)))

    async def post_judgement(request: Request):
        body = await _body(request)
        _check_fields(body, {"episode", "step", "value", "delay_ms", "client_id"})
        out, new = await run_in_threadpool(
            A.judge, sid_of(request), _field(body, "episode", int), _field(body, "step", int),
            _field(body, "value", int), float(_field(body, "delay_ms", (int, float))),
            _field(body, "client_id", str, None))
        return JSONResponse(out, status_code=201 if new else 200)

    async def post_round_done(request: Request):
        _check_fields(await _body(request, empty_ok=True), set())
        return JSONResponse(await run_in_threadpool(A.round_done, sid_of(request)), status_code=202)

    async def value_map(request: Request):
        sid = sid_of(request)
        await run_in_threadpool(A.session_or_404, sid)
        png = await run_in_threadpool(A.store.value_map, sid)
        if png is None:
            raise BadRequest(404, f"session {sid} has no fitted ISR yet")
        return Response(png, media_type="image/png")

    async def study_rows(request: Request):
        return JSONResponse(_finite({"study": dataclasses.asdict(A.cfg), "sessions": await run_in_threadpool(A.study_rows)}))

    async def export(request: Request):
        def make() -> bytes:
            with tempfile.TemporaryDirectory(dir=A.data) as tmp:
                path = Path(tmp) / "judgements.parquet"
                A.store.export(path)
                return path.read_bytes()
        data = await run_in_threadpool(make)
        return Response(data, media_type="application/vnd.apache.parquet",
                        headers={"content-disposition": 'attachment; filename="judgements.parquet"'})

    async def not_found(request: Request, exc: HTTPException):
        return _error(exc.status_code, exc.detail if isinstance(exc.detail, str) else "not found")

    S = r"{sid:int}"
    routes = [
        Route("/", page), Route("/study", study_page),
        Route("/api/config", handler(config)),
        Route("/api/sessions", handler(open_session), methods=["POST"]),
        Route(f"/api/sessions/{S}", handler(get_session)),
        Route(f"/api/sessions/{S}/episodes/{{idx:int}}", handler(get_episode)),
        Route(f"/api/sessions/{S}/shown", handler(post_shown), methods=["POST"]),
        Route(f"/api/sessions/{S}/judgements", handler(post_judgement), methods=["POST"]),
        Route(f"/api/sessions/{S}/round-done", handler(post_round_done), methods=["POST"]),
        Route(f"/api/sessions/{S}/value_map.png", handler(value_map)),
        Route("/api/study", handler(study_rows)),
        Route("/api/export.parquet", handler(export)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(A.start)
        try:
            yield
        finally:
            await run_in_threadpool(A.stop)

    return Starlette(routes=routes, exception_handlers={HTTPException: not_found}, lifespan=lifespan)


def run(app_state: CaregiverApp, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the app until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(build(app_state), host=host, port=port, log_level="warning")
