// The participant's page: join with an id, watch the learner's episodes step by step, praise or
// disapprove (keys or buttons), wait while it practises, and see the result once you have left.
// Each frame shown is reported to the server (a judgement may only name a step that was shown);
// each judgement is sent with the step on screen and the delay since that step appeared.
"use strict";
const $ = id => document.getElementById(id);
const state = { sid: null, session: null, config: null, episode: null, ep: -1, t: -1, shownAt: 0,
                paused: false, frameMs: 600, given: 0, pending: new Set() };

async function api(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(path, { method, headers: body ? { "content-type": "application/json" } : {},
                                    body: body ? JSON.stringify(body) : undefined });
      const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
      if (!r.ok) throw Object.assign(new Error(data?.error || r.statusText), { status: r.status });
      return data;
    } catch (e) {
      if (e.status || attempt >= 4) throw e;  // an answer is final; a lost connection is retried
      await sleep(250 * (attempt + 1));
    }
  }
}
const sleep = ms => new Promise(res => setTimeout(res, ms));
function show(section) {
  for (const s of ["join", "watch", "training", "result"]) $(s).classList.toggle("hidden", s !== section);
  document.body.dataset.screen = section;
}

async function join(ev) {
  ev.preventDefault();
  $("join-error").textContent = "";
  try {
    state.config = await api("GET", "/api/config");
    World.colors = state.config.world.colors;
    state.session = await api("POST", "/api/sessions", { participant: $("participant").value.trim() });
    state.sid = state.session.id;
    state.given = state.session.judgements;
    await route();
  } catch (e) { $("join-error").textContent = e.message; }
}

async function route() {
  const s = state.session;
  if (s.status === "done") return showResult(s);
  if (s.status === "watching") return watch();
  return waitTraining();
}

async function watch() {
  show("watch");
  const s = state.session, per = s.episodes_per_round;
  const first = s.round * per, last = first + per - 1;
  // Continue where the person was: the last frame shown, shown again.
  let e = s.shown.episode, t = Math.max(0, s.shown.step);
  if (e < first) { e = first; t = 0; }
  for (;;) {
    if (state.ep !== e) { state.episode = await api("GET", `/api/sessions/${state.sid}/episodes/${e}`); state.ep = e; }
    await showFrame(e, t);
    await waitFrame();
    if (t + 1 < state.episode.steps.length) t += 1;
    else if (e < last) { e += 1; t = 0; }
    else break;
  }
  await Promise.allSettled([...state.pending]);  // judgements on their way belong to this round
  state.session = await api("POST", `/api/sessions/${state.sid}/round-done`);
  await waitTraining();
}

async function showFrame(e, t) {
  await api("POST", `/api/sessions/${state.sid}/shown`, { episode: e, step: t });
  World.drawStep($("world"), state.episode, t);
  state.shownE = e; state.shownT = t; state.shownAt = performance.now();
  const s = state.session, st = state.episode.steps[t];
  const inRound = e - s.round * s.episodes_per_round + 1;
  $("where").textContent = `Round ${s.round + 1} of ${s.rounds} · episode ${inRound} of ${s.episodes_per_round} · step ${t + 1} of ${state.episode.steps.length}`;
  $("action").textContent = `It chose: ${state.config.world.actions[st.action]}` + (st.coin ? " and reached the coin!" : "");
  const canvas = $("world");
  canvas.dataset.episode = e; canvas.dataset.step = t; canvas.dataset.coin = st.coin ? "1" : "0";
  window.dispatchEvent(new CustomEvent("frame", { detail: { episode: e, step: t, coin: st.coin } }));
}

async function waitFrame() {
  const start = performance.now();
  while (state.paused || performance.now() - start < state.frameMs) await sleep(Math.min(50, state.frameMs));
}

async function judge(value) {
  if (document.body.dataset.screen !== "watch" || state.shownE === undefined) return;
  const body = { episode: state.shownE, step: state.shownT, value,
                 delay_ms: Math.max(0, Math.round(performance.now() - state.shownAt)),
                 client_id: crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}` };
  const canvas = $("world");
  canvas.classList.add(value > 0 ? "praise" : "disapprove");
  setTimeout(() => canvas.classList.remove("praise", "disapprove"), 250);
  const sent = api("POST", `/api/sessions/${state.sid}/judgements`, body);
  state.pending.add(sent);
  try {
    await sent;
    state.given += 1;
    $("given").textContent = `Judgements given: ${state.given}`;
    document.body.dataset.given = state.given;
    $("watch-error").textContent = "";
  } catch (e) { $("watch-error").textContent = e.message; }
  finally { state.pending.delete(sent); }
}

async function waitTraining() {
  show("training");
  for (;;) {
    const s = state.session = await api("GET", `/api/sessions/${state.sid}`);
    if (s.error) { $("training-what").textContent = `Something went wrong: ${s.error}`; return; }
    if (s.status === "watching") return watch();
    if (s.status === "done") return showResult(s);
    $("training-what").textContent = s.status === "leaving"
      ? "You have left. The learner goes on alone, on what it learned from you…"
      : `The learner is practising on what it has learned from you (round ${s.round + 1} of ${s.rounds})…`;
    $("train-progress").value = s.progress || 0;
    await sleep(400);
  }
}

async function showResult(s) {
  show("result");
  const r = s.result, fmt = v => (v === null || v === undefined) ? "–" : Number(v).toFixed(2);
  $("result-numbers").innerHTML = `
    <tr><th>Goals per episode when you left</th><td id="goals-before">${fmt(r.goals_before)}</td></tr>
    <tr><th>…after it went on alone</th><td id="goals-after">${fmt(r.goals_after)}</td></tr>
    <tr><th>A scripted caregiver's learner, same protocol</th><td id="goals-scripted">${fmt(r.goals_scripted)}</td></tr>
    <tr><th>Kept (after / before)</th><td>${fmt(r.persistence)}</td></tr>
    <tr><th>Your judgements</th><td>${s.judgements} (${s.praise} praise, ${s.disapproval} disapproval)</td></tr>`;
  $("value-map").src = `/api/sessions/${state.sid}/value_map.png`;
  document.body.dataset.done = "1";
  const ep = r.after_episode, canvas = $("after");
  for (let loop = 0; loop < 3 && document.body.dataset.screen === "result"; loop++)
    for (let t = 0; t < ep.steps.length; t++) {
      World.drawStep(canvas, ep, t);
      $("after-where").textContent = `After autonomy: step ${t + 1} of ${ep.steps.length}` + (ep.steps[t].coin ? " — coin!" : "");
      await sleep(Math.max(100, state.frameMs / 2));
    }
}

$("join-form").addEventListener("submit", join);
$("praise").addEventListener("click", () => judge(1));
$("disapprove").addEventListener("click", () => judge(-1));
$("pause").addEventListener("click", togglePause);
function togglePause() { state.paused = !state.paused; $("pause").textContent = state.paused ? "Resume" : "Pause"; }
$("speed").addEventListener("input", ev => { state.frameMs = Number(ev.target.value); $("speed-ms").textContent = ev.target.value; });
document.addEventListener("keydown", ev => {
  if (document.body.dataset.screen !== "watch" || ev.target.tagName === "INPUT" && ev.target.type !== "range") return;
  if (ev.key === "ArrowUp" || ev.key === "p" || ev.key === "P") { ev.preventDefault(); judge(1); }
  else if (ev.key === "ArrowDown" || ev.key === "n" || ev.key === "N") { ev.preventDefault(); judge(-1); }
  else if (ev.key === " ") { ev.preventDefault(); togglePause(); }
});
show("join");
