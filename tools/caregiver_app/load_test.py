"""Load test of the caregiver app on loopback: N simulated participants at once for a bounded
time, each judging every step it is shown (praise on the coin, disapproval otherwise), over
HTTP as the page does. Reports the judgements' round trips (p50, p95, max) and checks that every
acknowledged judgement is stored as sent.

    .venv/bin/python tools/caregiver_app/load_test.py --participants 20 --seconds 30

It starts the app itself (a fresh study in a temporary folder, the default study settings;
participants who end a round wait for its training, then go on) unless --url names a running one
(then --data names its folder). --frame-ms paces each participant as a page would (default 0:
as fast as the server answers, a worst case).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--participants", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--url", default=None, help="a running app (default: start one here)")
    p.add_argument("--data", type=Path, default=None, help="the running app's --data folder")
    p.add_argument("--frame-ms", type=float, default=0.0, help="time each frame stays on screen (default 0)")
    args = p.parse_args()
    from internalize import devices
    from internalize.caregiver_app import db, participants

    server = None
    if args.url is None:
        import uvicorn

        from internalize.caregiver_app import server as app_server, study

        devices.enable_compilation_cache()
        args.data = Path(tempfile.mkdtemp(prefix="caregiver-load-"))
        cfg = study.StudyConfig()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app_server.build(app_server.CaregiverApp(args.data, cfg)),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        args.url = f"http://127.0.0.1:{port}"
    until = time.monotonic() + args.seconds
    judge = lambda step: 1 if step["coin"] else -1  # noqa: E731
    with concurrent.futures.ThreadPoolExecutor(args.participants) as pool:
        records = list(pool.map(lambda i: participants.take_part(args.url, f"load-{os.getpid()}-{i}", judge,
                                                                  until=until, frame_s=args.frame_ms / 1e3),
                                range(args.participants)))
    rows = sqlite3.connect(args.data / db.FILE).execute("SELECT id, session, episode, step, value FROM judgements")
    stored = {r[0]: tuple(r[1:]) for r in rows}
    acked = [(r.session, *a) for r in records for a in r.acknowledged]
    lost = sum(stored.get(jid) != (sid, e, t, v) for sid, jid, e, t, v in acked)
    lat = 1e3 * np.concatenate([r.latencies for r in records])
    out = {"participants": args.participants, "seconds": args.seconds, "frame_ms": args.frame_ms,
           "cores": os.cpu_count(),
           "judgements": len(acked), "per_second": len(acked) / args.seconds, "lost": lost,
           "rounds_finished": sum(r.rounds for r in records),
           "round_trip_ms": {"p50": float(np.median(lat)), "p95": float(np.percentile(lat, 95)),
                             "max": float(lat.max())}}
    print(json.dumps(out, indent=1))
    if server is not None:  # a clean stop: the app's worker ends after its current job
        server.should_exit = True
        thread.join()
    raise SystemExit(1 if lost else 0)


if __name__ == "__main__":
    main()
