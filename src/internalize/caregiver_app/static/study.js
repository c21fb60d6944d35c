// The researcher's page: every session of the study, its judgements, its ISR's fit, persistence
// and value map, and the export of every judgement.
"use strict";
const fmt = (v, d = 2) => (v === null || v === undefined) ? "–" : Number(v).toFixed(d);
const esc = s => String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
async function refresh() {
  const r = await fetch("/api/study"), data = await r.json(), st = data.study;
  document.getElementById("settings").textContent =
    `${st.rounds} rounds of ${st.episodes_per_round} episodes; ${st.round_steps} training steps per round; ` +
    `${st.autonomy_steps} autonomy steps; preset ${st.preset}. ${data.sessions.length} session(s).`;
  document.querySelector("#sessions tbody").innerHTML = data.sessions.map(s => `<tr data-session="${s.id}">
    <td class="id">${s.id}</td><td class="id">${esc(s.participant)}</td><td class="id">${esc(s.status)}</td>
    <td>${s.round + 1}</td><td>${s.judgements}</td><td>${fmt(s.praise_rate, 3)}</td><td>${fmt(s.disapproval_rate, 3)}</td>
    <td>${fmt(s.isr_test_mse, 4)}</td><td>${fmt(s.isr_pearson)}</td><td>${fmt(s.goals_after)}</td>
    <td>${fmt(s.goals_scripted)}</td><td>${fmt(s.persistence)}</td></tr>`).join("");
  const maps = document.getElementById("maps");
  maps.innerHTML = data.sessions.filter(s => s.value_map).map(s =>
    `<figure><img src="${s.value_map}" alt="value map of session ${s.id}" style="max-width: 40em">
     <figcaption>Session ${s.id} (${esc(s.participant)})</figcaption></figure>`).join("");
  document.body.dataset.loaded = "1";
}
refresh();
setInterval(refresh, 10000);
