// micromoments pages: the live stream and the funnel builder. Plain JS, no build step.
"use strict";
const MM = (() => {
  const NAMES = {know: "I want to know", go: "I want to go", do: "I want to do", buy: "I want to buy"};
  const COLORS = {know: "#4C78A8", go: "#F58518", do: "#54A24B", buy: "#E45756"};
  // Text for Plotly labels is escaped too: Plotly reads <b>, <br> and <a href> in them.
  const unesc = (s) => new DOMParser().parseFromString(String(s ?? ""), "text/html").documentElement.textContent;
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const pct = (x) => x == null ? "—" : (x >= 0.01 || x === 0 ? Math.round(x * 100) + "%" : (x * 100).toFixed(1) + "%");
  const dur = (s) => s == null ? "—" : s < 90 ? Math.round(s) + " s" : s < 5400 ? Math.round(s / 60) + " min" : s < 172800 ? (s / 3600).toFixed(1) + " h" : (s / 86400).toFixed(1) + " days";
  const layout = (extra) => Object.assign({template: "plotly_white", margin: {l: 40, r: 20, t: 30, b: 40}, height: 300,
    font: {family: "Inter, Segoe UI, Helvetica, Arial, sans-serif", size: 13}}, extra || {});
  const config = {displaylogo: false, responsive: true};

  async function getJSON(url) {
    const r = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || body.detail || ("HTTP " + r.status));
    return body;
  }

  // --- live moments: poll /app/api/moments ---------------------------------------------------------
  function live() {
    const form = document.getElementById("live-filters");
    const tbody = document.querySelector("#live-table tbody");
    const empty = document.getElementById("live-empty");
    let seen = new Set(), first = true;
    async function tick() {
      if (form.pause.checked) return;
      const q = new URLSearchParams({type: form.type.value, channel: form.channel.value, limit: "100"});
      let data;
      try { data = await getJSON("/app/api/moments?" + q); } catch (e) { return; }
      const rows = data.moments;
      empty.hidden = rows.length > 0;
      tbody.innerHTML = rows.map((m) => {
        const key = m.ts + m.person_id + m.moment;
        const cls = !first && !seen.has(key) ? "new" : "";
        return `<tr class="${cls}"><td>${esc((m.ts || "").replace("T", " ").slice(0, 19))}</td>` +
          `<td><span class="tag m-${esc(m.moment)}">${esc(NAMES[m.moment] || m.moment)}</span>${m.go_type ? " (" + esc(m.go_type) + ")" : ""}</td>` +
          `<td>${esc(m.channel)}</td><td>${esc(m.text)}</td>` +
          `<td><a href="/app/people/${encodeURIComponent(m.person_id || "")}">${esc(m.person_id)}</a></td><td class="num">${pct(m.confidence)}</td></tr>`;
      }).join("");
      seen = new Set(rows.map((m) => m.ts + m.person_id + m.moment));
      first = false;
      const counts = {};
      rows.forEach((m) => { counts[m.moment] = (counts[m.moment] || 0) + 1; });
      const keys = Object.keys(counts);
      Plotly.react("chart-live", [{type: "bar", x: keys.map((k) => esc(NAMES[k] || k)), y: keys.map((k) => counts[k]),
        marker: {color: keys.map((k) => COLORS[k] || "#9D755D")}}],
        layout({height: 220, yaxis: {title: "of the latest " + rows.length}}), config);
    }
    form.addEventListener("change", () => { first = true; tick(); });
    tick();
    setInterval(tick, 2000);
  }

  // --- journey: funnel builder (calls /app/api/funnel) and map click-through -----------------------
  function journey() {
    const form = document.getElementById("funnel-builder");
    const steps = document.getElementById("funnel-steps");
    const tmpl = document.getElementById("step-options");
    const renumber = () => steps.querySelectorAll(".step .no").forEach((n, i) => { n.textContent = i + 1; });
    document.getElementById("funnel-add").addEventListener("click", () => {
      const div = document.createElement("div");
      div.className = "step";
      div.innerHTML = `<span class="no"></span><select name="step">${tmpl.innerHTML}</select><button type="button" class="link remove" title="remove this step">✕</button>`;
      steps.appendChild(div); renumber();
    });
    steps.addEventListener("click", (e) => {
      if (e.target.classList.contains("remove") && steps.children.length > 2) { e.target.parentElement.remove(); renumber(); }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      form.querySelectorAll("select[name=step]").forEach((s) => q.append("step", s.value));
      q.set("mode", form.mode.value); q.set("window_days", form.window_days.value);
      const err = document.getElementById("funnel-error");
      const table = document.getElementById("funnel-table");
      err.hidden = true;
      let data;
      try { data = await getJSON("/app/api/funnel?" + q); } catch (x) { err.textContent = x.message; err.hidden = false; return; }
      const st = data.steps;
      Plotly.react("chart-funnel-built", [{type: "funnel", y: st.map((s) => esc(s.step_name)), x: st.map((s) => s.people),
        texttemplate: "%{value:,} · %{percentInitial:.0%}", marker: {color: "#4C78A8"}}], layout({height: 80 + 60 * st.length, margin: {l: 180, r: 20, t: 10, b: 30}}), config);
      table.querySelector("tbody").innerHTML = st.map((s) =>
        `<tr data-step="${esc(s.step)}"><td>${esc(s.step_name)}</td><td class="num people">${s.people.toLocaleString("en")}</td>` +
        `<td class="num">${pct(s.conversion_from_start)}</td><td class="num">${pct(s.conversion_from_previous)}</td><td class="num">${dur(s.median_s_from_start)}</td></tr>`).join("");
      table.hidden = false;
      table.dataset.ready = "1";
    });
    form.requestSubmit();
    // A click on a journey-map cell lists people in it.
    const map = document.getElementById("chart-journey");
    if (map && map.on) {
      map.on("plotly_click", (ev) => {
        const p = ev.points && ev.points[0];
        if (!p || p.data.type !== "heatmap") return;
        const x = unesc(p.x), moment = Object.keys(NAMES).find((k) => NAMES[k] === x) || x;
        location.href = "/app/journey/examples?" + new URLSearchParams({stage: unesc(p.y), moment: moment});
      });
    }
  }
  // --- charts rendered by the server: the figure's JSON sits in data-figure (no inline script) ------
  function drawCharts() {
    return Promise.all(Array.from(document.querySelectorAll("div.plot[data-figure]"), (el) => {
      const fig = JSON.parse(el.dataset.figure), cfg = JSON.parse(el.dataset.config || "{}");
      return Plotly.newPlot(el, fig.data || [], fig.layout || {}, cfg);
    }));
  }
  function start() {
    document.querySelectorAll("select[data-autosubmit]").forEach((s) => s.addEventListener("change", () => s.form.submit()));
    drawCharts().finally(() => {
      if (document.getElementById("live-filters")) live();
      if (document.getElementById("funnel-builder")) journey();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
  return {live, journey};
})();
