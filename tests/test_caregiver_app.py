"""The caregiver app (issue 18): a person socializes a learner in a real browser (Playwright
driving Debian's chromium, headless), the data survive a killed server, bad requests change
nothing, and 20 simulated participants at once lose no judgement.

One tiny study is served in this process for the whole file (its compiled programs shared); the
kill-and-restart test runs the app as a command of its own, to kill it. Screenshots of each page
are kept under ``test-artifacts/caregiver_app/`` (or ``$INTERNALIZE_TEST_ARTIFACTS``).
"""
from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from internalize.caregiver_app import db, participants, server, study
from internalize.cli import main as cli_main
from internalize.experiments.report import report

TINY = study.StudyConfig(rounds=2, episodes_per_round=4, round_steps=16_384, autonomy_steps=32_768, eval_episodes=50)
ARTIFACTS = Path(os.environ.get("INTERNALIZE_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
CHROMIUM = os.environ.get("INTERNALIZE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The tiny study, served on loopback in this process: (base URL, CaregiverApp)."""
    data = tmp_path_factory.mktemp("caregiver")
    state = server.CaregiverApp(data, TINY)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(server.build(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", state
    srv.should_exit = True
    thread.join(timeout=60)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), (f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
                                      "(`make test` installs it where apt is available)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def shot(page, name: str) -> Path:
    path = ARTIFACTS / "caregiver_app" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


# A scripted participant inside the page: at every frame where the learner reaches the coin it
# praises, by the praise key and the praise button in turn (the page's own handlers); otherwise it
# says nothing. It also records every frame shown.
SCRIPTED = """
window.__frames = []; window.__praised = 0;
window.addEventListener('frame', ev => {
  window.__frames.push(ev.detail);
  if (!ev.detail.coin) return;
  if (window.__praised++ % 2 === 0) document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowUp'}));
  else document.getElementById('praise').click();
});
"""


@pytest.fixture(scope="module")
def browser_session(app, browser):
    """A scripted participant's whole session in the browser: (session view, frames shown, shots)."""
    base, state = app
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(base + "/")
    shots = [shot(page, "participant_join")]
    page.evaluate(SCRIPTED)
    page.fill("#participant", "scripted-1")
    page.eval_on_selector("#speed", "el => { el.value = '50'; el.dispatchEvent(new Event('input')); }")
    page.click("#start")
    page.wait_for_selector("body[data-screen=watch]")
    page.wait_for_function("window.__frames.length >= 5")
    shots.append(shot(page, "participant_watching"))
    page.wait_for_selector("body[data-screen=training]", timeout=120_000)
    shots.append(shot(page, "participant_training"))
    page.wait_for_selector("body[data-done='1']", timeout=300_000)
    page.wait_for_function("document.getElementById('value-map').complete")
    shots.append(shot(page, "participant_result"))
    frames = page.evaluate("window.__frames")
    sid = httpx.post(base + "/api/sessions", json={"participant": "scripted-1"}).json()["id"]
    view = httpx.get(f"{base}/api/sessions/{sid}").json()
    study_page = browser.new_page(viewport={"width": 1400, "height": 1000})
    study_page.goto(base + "/study")
    study_page.wait_for_selector("body[data-loaded='1']")
    study_page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    shots.append(shot(study_page, "study"))
    rows = study_page.eval_on_selector_all("#sessions tbody tr", "rs => rs.map(r => r.dataset.session)")
    page.close()
    study_page.close()
    return view, frames, shots, rows


def test_a_scripted_participant_teaches_the_learner_in_the_browser(app, browser_session):
    base, state = app
    view, frames, shots, rows = browser_session
    assert view["status"] == "done"
    # It watched every step of every round, in order, and praised exactly the coins it saw.
    assert len(frames) >= TINY.episodes * state.engine.max_steps
    coins = {(f["episode"], f["step"]) for f in frames if f["coin"]}
    judged = state.store.judgements(view["id"])
    assert {(j["episode"], j["step"]) for j in judged} == coins
    assert all(j["value"] == 1 and j["delay_ms"] >= 0 for j in judged)
    assert view["judgements"] == view["praise"] == len(coins) > 0
    # A participant who said nothing at all, over the API, under the same protocol.
    silent = participants.take_part(base, "silent-1", participants.silent)
    quiet = httpx.get(f"{base}/api/sessions/{silent.session}").json()
    assert quiet["status"] == "done" and quiet["judgements"] == 0
    assert view["result"]["goals_after"] > quiet["result"]["goals_after"], (view["result"], quiet["result"])
    # The page showed the result, and the researcher's page lists the session with its value map.
    assert all(p.is_file() and p.stat().st_size > 1000 for p in shots)
    assert str(view["id"]) in rows
    png = httpx.get(f"{base}/api/sessions/{view['id']}/value_map.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_a_finished_session_is_an_ordinary_results_folder(app, browser_session):
    view, *_ = browser_session
    folder = Path(view["result"]["folder"])
    assert (folder / "manifest.json").is_file() and (folder / "params.msgpack").is_file()
    summary = report(folder)
    assert summary["experiment"] == "human_caregiver"
    assert {c["id"] for c in summary["claims"]} == {"person_persists", "person_vs_script"}
    np.testing.assert_allclose(summary["per_seed"]["goals_after_person"].mean(), view["result"]["goals_after"])
    gif = folder / "person.gif"
    assert cli_main(["render", study.EXPERIMENT_REF, "--results", str(folder.parent), "--run", folder.name,
                     "--condition", "person", "--gif", str(gif)]) == 0
    assert gif.stat().st_size > 0


def test_export_writes_every_judgement_and_never_overwrites(app, browser_session, tmp_path, capsys):
    base, state = app
    out = tmp_path / "all.parquet"
    assert cli_main(["caregiver-app", "export", "--data", str(state.data), "--out", str(out)]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(out).to_pydict()
    assert len(table["value"]) == len(state.store.judgements())
    assert set(table["participant"]) >= {"scripted-1"} and all(table["coin"])
    before = out.read_bytes()
    assert cli_main(["caregiver-app", "export", "--data", str(state.data), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    download = httpx.get(base + "/api/export.parquet")
    assert download.status_code == 200 and download.content[:4] == b"PAR1"


@pytest.fixture()
def watching(app):
    """A fresh session watching its first round, with its first two frames shown."""
    base, state = app
    name = f"p{time.monotonic_ns()}"
    s = httpx.post(base + "/api/sessions", json={"participant": name}).json()
    sid = s["id"]
    for t in (0, 1):
        assert httpx.post(f"{base}/api/sessions/{sid}/shown", json={"episode": 0, "step": t}).status_code == 200
    return base, state, sid


@pytest.mark.parametrize("path, body, status, says", [
    ("judgements", b"{not json", 400, "not valid JSON"),
    ("judgements", b"[1, 2]", 400, "JSON object"),
    ("judgements", {"episode": 0, "step": 5, "value": 1, "delay_ms": 10}, 422, "not been shown"),
    ("judgements", {"episode": 0, "step": 1, "value": 2, "delay_ms": 10}, 422, "value must be"),
    ("judgements", {"episode": 0, "step": 1, "value": True, "delay_ms": 10}, 422, "must be an integer"),
    ("judgements", {"episode": 0, "step": 1, "value": 1, "delay_ms": -1}, 422, "delay_ms"),
    ("judgements", {"episode": 0, "step": 1, "value": 1, "delay_ms": 1e9}, 422, "delay_ms"),
    ("judgements", {"episode": 0, "step": 99, "value": 1, "delay_ms": 1}, 422, "step must be"),
    ("judgements", {"episode": 77, "step": 0, "value": 1, "delay_ms": 1}, 404, "no episode 77"),
    ("judgements", {"episode": 0, "step": 0, "value": 1}, 422, "missing field 'delay_ms'"),
    ("judgements", {"episode": 0, "step": 0, "value": 1, "delay_ms": 1, "x": 1}, 422, "unknown field"),
    ("judgements", {"episode": 0, "step": 0, "value": 1, "delay_ms": 1, "client_id": "x" * 100}, 422, "client_id"),
    ("judgements", b'{"pad": "' + b"x" * 10_000 + b'"}', 413, "over 4096 bytes"),
    ("shown", {"episode": 0, "step": 0}, 409, "before the last frame"),
    ("shown", {"episode": 0, "step": 20}, 422, "step must be"),
    ("round-done", None, 409, "not over"),
])
def test_bad_requests_get_a_4xx_with_one_line_and_change_nothing(watching, path, body, status, says):
    base, state, sid = watching
    before = (state.store.session(sid), len(state.store.judgements(sid)))
    if isinstance(body, bytes):
        r = httpx.post(f"{base}/api/sessions/{sid}/{path}", content=body, headers={"content-type": "application/json"})
    else:
        r = httpx.post(f"{base}/api/sessions/{sid}/{path}", json=body)
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert says in message and "\n" not in message
    assert (state.store.session(sid), len(state.store.judgements(sid))) == before


def test_unknown_sessions_and_bad_participant_ids_are_refused(app, watching):
    base, state, sid = watching
    n = len(state.store.sessions())
    assert httpx.get(f"{base}/api/sessions/99999").status_code == 404
    r = httpx.post(f"{base}/api/sessions/99999/judgements", json={"episode": 0, "step": 0, "value": 1, "delay_ms": 1})
    assert r.status_code == 404 and "no session 99999" in r.json()["error"]
    assert httpx.get(f"{base}/api/sessions/{sid}/episodes/3").status_code == 404  # not revealed yet
    for bad in ("../etc", "a/b", "", "x" * 65, "name with space", 7):
        r = httpx.post(f"{base}/api/sessions", json={"participant": bad})
        assert r.status_code == 422, bad
    assert len(state.store.sessions()) == n
    # A retried judgement (same client id) is stored once.
    body = {"episode": 0, "step": 1, "value": -1, "delay_ms": 5, "client_id": "retry-1"}
    first = httpx.post(f"{base}/api/sessions/{sid}/judgements", json=body)
    again = httpx.post(f"{base}/api/sessions/{sid}/judgements", json=body)
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]


def test_twenty_participants_at_once_lose_no_judgement(app):
    """A bounded load test on loopback: 20 simulated participants judging every step they are
    shown (rounds end and train meanwhile); every acknowledged judgement is stored as sent."""
    base, state = app
    until = time.monotonic() + 4.0

    def one(i):
        judge = lambda step: 1 if step["coin"] else -1  # noqa: E731
        return participants.take_part(base, f"load-{i}", judge, until=until, wait_training=False)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        records = list(pool.map(one, range(20)))
    stored = {j["id"]: (j["session"], j["episode"], j["step"], j["value"]) for j in state.store.judgements()}
    acked = [(r.session, *a) for r in records for a in r.acknowledged]
    assert len(acked) > 100
    assert all(stored.get(jid) == (sid, e, t, v) for sid, jid, e, t, v in acked)
    latencies = np.concatenate([r.latencies for r in records])
    print(f"\n20 participants, {len(acked)} judgements in 4 s: round trip p50 {1e3 * np.median(latencies):.1f} ms, "
          f"p95 {1e3 * np.percentile(latencies, 95):.1f} ms")


def test_a_killed_server_loses_no_judgement_and_the_participant_goes_on(tmp_path):
    data, port = tmp_path / "study", free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "internalize.cli", "caregiver-app", "--data", str(data), "--port", str(port),
           "--rounds", str(TINY.rounds), "--episodes-per-round", str(TINY.episodes_per_round),  # the fixture's programs
           "--round-steps", str(TINY.round_steps), "--autonomy-steps", str(TINY.autonomy_steps),
           "--eval-episodes", str(TINY.eval_episodes)]

    def start():
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(base + "/api/config", timeout=1).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.2)

    proc = start()
    acked: list = []
    errors: list = []

    def judge_every_step():
        try:
            with httpx.Client(base_url=base, timeout=5) as c:
                sid = c.post("/api/sessions", json={"participant": "kill-1"}).json()["id"]
                for t in range(20):
                    c.post(f"/api/sessions/{sid}/shown", json={"episode": 0, "step": t}).raise_for_status()
                    r = c.post(f"/api/sessions/{sid}/judgements",
                               json={"episode": 0, "step": t, "value": 1, "delay_ms": 3, "client_id": f"k{t}"})
                    r.raise_for_status()
                    acked.append((r.json()["id"], t))
        except (httpx.TransportError, httpx.HTTPStatusError) as e:
            errors.append(e)

    worker = threading.Thread(target=judge_every_step)
    worker.start()
    while len(acked) < 8 and worker.is_alive():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # mid-stream: no shutdown, no flush
    proc.wait()
    worker.join()
    assert len(acked) >= 8
    rows = sqlite3.connect(data / db.FILE).execute("SELECT id, step FROM judgements").fetchall()
    assert set(acked) <= set(rows)
    proc = start()
    try:
        s = httpx.post(base + "/api/sessions", json={"participant": "kill-1"}).json()
        assert s["status"] == "watching" and s["judgements"] == len(rows)
        last = s["shown"]["step"]
        assert last >= acked[-1][1]  # where the participant was
        # ... and goes on from there: the next frame is shown, and judged.
        with httpx.Client(base_url=base, timeout=30) as c:
            e, t = (0, last + 1) if last + 1 < 20 else (1, 0)
            assert c.post(f"/api/sessions/{s['id']}/shown", json={"episode": e, "step": t}).status_code == 200
            r = c.post(f"/api/sessions/{s['id']}/judgements",
                       json={"episode": e, "step": t, "value": -1, "delay_ms": 4, "client_id": "after-restart"})
            assert r.status_code == 201
            assert c.get(f"/api/sessions/{s['id']}").json()["judgements"] == len(rows) + 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def test_the_command_refuses_bad_settings_with_one_line(tmp_path, capsys):
    port = str(free_port())
    cases = [(["--rounds", "0"], "rounds must be at least 1"),
             (["--reward-model", "magic"], "reward_model must be one of"),
             (["--port", "70000"], "port number"),
             (["export", "--data", str(tmp_path / "none")], "no study in")]
    for flags, says in cases:
        argv = ["caregiver-app", *flags] if flags[0] == "export" else \
            ["caregiver-app", "--data", str(tmp_path / "d"), "--port", port, *flags]
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1, err
    # A study folder keeps its settings: other flags are refused, and nothing in it changes.
    data = tmp_path / "kept"
    db.Store(data, {"made": "elsewhere"}).close()
    before = (data / db.FILE).read_bytes()
    assert cli_main(["caregiver-app", "--data", str(data), "--port", port, "--rounds", "3"]) == 2
    assert "other settings" in capsys.readouterr().err and not (tmp_path / "d").exists()
    assert (data / db.FILE).read_bytes() == before

