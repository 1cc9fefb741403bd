/* Statistics page: fetches /desk/api/stats and draws the charts with the locally served Chart.js. */
(function () {
  "use strict";
  const T = JSON.parse(document.getElementById("stats-i18n").textContent);
  const $ = (id) => document.getElementById(id);
  const charts = {};
  const palette = ["#2f5bea", "#e8590c", "#2b8a3e", "#c2255c", "#6741d9", "#1098ad", "#f08c00", "#5c940d", "#868e96", "#d6336c"];
  window.__stats = { loaded: false };

  function draw(id, config, isEmpty) {
    if (charts[id]) charts[id].destroy();
    // Readable at a glance: short dates on the axis, points large enough to see a single day's value,
    // and a note instead of an empty grid when there is nothing to show.
    const ds = config.data.datasets;
    ds.forEach((d) => { if (config.type === "line") { d.pointRadius = 4; d.pointHoverRadius = 6; } });
    const empty = isEmpty ? isEmpty(ds) : !ds.length || ds.every((d) => d.data.every((v) => v === null || v === 0));
    const box = $(id).parentElement;
    let note = box.querySelector(".chart-empty");
    if (!note) { note = document.createElement("p"); note.className = "chart-empty muted"; box.append(note); }
    note.textContent = empty ? T.none : "";
    config.options.scales = config.options.scales || {};
    config.options.scales.x = Object.assign({ ticks: { autoSkip: true, autoSkipPadding: 12, maxRotation: 0, callback(v) { return shortLabel(this.getLabelForValue(v)); } } },
      config.options.scales.x || {});
    charts[id] = new Chart($(id), config);
  }
  function shortLabel(label) {
    const m = /^\d{4}-(\d{2})-(\d{2})$/.exec(label || "");
    if (!m) return label;
    return $("period").value === "week" ? `${Number(m[1])}/${Number(m[2])}起` : `${Number(m[1])}/${Number(m[2])}`;
  }
  function stacked(labels, series, names) {
    return {
      type: "bar",
      data: { labels, datasets: Object.keys(series).map((k, i) => ({ label: (names && names[k]) || k, data: series[k], backgroundColor: palette[i % palette.length] })) },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    };
  }
  const fmt = (v) => (v === null || v === undefined ? "—" : v);

  async function load() {
    const period = $("period").value, days = $("days").value;
    const r = await fetch(`/desk/api/stats?period=${period}&days=${days}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (r.status === 401) { location.href = "/desk/login?next=/desk/stats"; return; }
    const d = await r.json();
    const labels = d.labels;
    $("kpi-tickets").textContent = d.totals.tickets;
    $("kpi-first").textContent = fmt(d.totals.first_response_median_min);
    $("kpi-resolution").textContent = fmt(d.totals.resolution_median_min);
    $("kpi-sla").textContent = d.totals.sla_breaches;
    $("kpi-bot").textContent = d.bot.totals.bot_only_share === null ? "—" : `${Math.round(d.bot.totals.bot_only_share * 100)}%（${d.bot.totals.bot_only}/${d.bot.totals.conversations}）`;
    $("stats-source").textContent = T.sources[d.bot.source] || d.bot.source;
    draw("chart-types", stacked(labels, d.by_type, T.types));
    draw("chart-categories", stacked(labels, d.complaints_by_category, { "-": T.uncategorised }));
    draw("chart-times", {
      type: "line",
      data: { labels, datasets: [
        { label: T.first_response, data: d.first_response_avg_min, borderColor: palette[0], backgroundColor: palette[0], spanGaps: true },
        { label: T.resolution, data: d.resolution_avg_min, borderColor: palette[1], backgroundColor: palette[1], spanGaps: true }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } },
    });
    draw("chart-sla", { type: "bar", data: { labels, datasets: [{ label: T.breaches, data: d.sla_breaches, backgroundColor: "#e03131" }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
    draw("chart-bot", {
      type: "bar",
      data: { labels, datasets: [
        { label: T.conversations, data: d.bot.conversations, backgroundColor: "#adb5bd" },
        { label: T.bot_only, data: d.bot.bot_only, backgroundColor: palette[2] }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    // the share per day/week: a bucket without conversations has no share (a gap, not 0 %)
    const share = d.bot.bot_only_share.map((v) => (v === null ? null : Math.round(v * 1000) / 10));
    draw("chart-bot-share", {
      type: "line",
      data: { labels, datasets: [{ label: T.share_over_time, data: share, borderColor: palette[2], backgroundColor: palette[2], spanGaps: false }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
                 plugins: { tooltip: { callbacks: { label: (c) => `${T.share}：${c.parsed.y}%（${d.bot.bot_only[c.dataIndex]}/${d.bot.conversations[c.dataIndex]}）` } } } },
    }, (sets) => sets.every((set) => set.data.every((v) => v === null)));  // 0 % of some conversations is a value
    const sat = d.satisfaction;
    $("kpi-satisfaction").textContent = sat.totals.average === null ? "—" : `${sat.totals.average}（${sat.totals.rated}${T.rated}）`;
    draw("chart-satisfaction", {
      type: "line",
      data: { labels, datasets: [{ label: T.average, data: sat.average, borderColor: palette[4], backgroundColor: palette[4], spanGaps: false }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { min: 1, max: 5, ticks: { stepSize: 1 } } } },
    });
    const scoreColors = { 1: "#c92a2a", 2: "#f08c00", 3: "#adb5bd", 4: "#74b816", 5: "#2b8a3e" };
    draw("chart-satisfaction-dist", {
      type: "bar",
      data: { labels, datasets: ["1", "2", "3", "4", "5"].map((k) => ({ label: `${k}${T.score}`, data: sat.distribution[k], backgroundColor: scoreColors[k] })) },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    });
    const agents = $("satisfaction-agents").querySelector("tbody");
    agents.replaceChildren();
    for (const a of sat.by_agent) {
      const tr = document.createElement("tr");
      const dist = ["1", "2", "3", "4", "5"].map((k) => `${k}${T.score}×${a.distribution[k]}`).join("  ");
      for (const v of [a.agent ? `${a.name}（${a.agent}）` : T.bot_served, a.count, fmt(a.average), dist]) {
        const td = document.createElement("td"); td.textContent = v; tr.append(td);
      }
      agents.append(tr);
    }
    if (!sat.by_agent.length) {
      const tr = document.createElement("tr"); const td = document.createElement("td");
      td.colSpan = 4; td.className = "muted"; td.textContent = T.none; tr.append(td); agents.append(tr);
    }
    const tbody = $("fallbacks").querySelector("tbody");
    tbody.replaceChildren();
    if (!d.bot.top_fallbacks.length) {
      const tr = document.createElement("tr"); const td = document.createElement("td");
      td.colSpan = 3; td.className = "muted"; td.textContent = T.none; tr.append(td); tbody.append(tr);
    }
    for (const f of d.bot.top_fallbacks) {
      const tr = document.createElement("tr");
      for (const v of [f.text, f.count, new Date(f.last).toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" })]) {
        const td = document.createElement("td"); td.textContent = v; tr.append(td);
      }
      tbody.append(tr);
    }
    window.__stats = { loaded: true, data: d };
  }
  $("period").addEventListener("change", () => { $("days").value = $("period").value === "week" ? "84" : "30"; load(); });
  $("days").addEventListener("change", load);
  load();
})();
