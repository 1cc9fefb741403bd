/* 星河客服 agent desk: live queue (server-sent events), claimed conversations, replies, hand-back. */
(function () {
  "use strict";
  const T = JSON.parse(document.getElementById("desk-i18n").textContent);
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const me = document.getElementById("me").dataset;
  const $ = (id) => document.getElementById(id);
  const BASE_TITLE = document.title;

  const CANNED = JSON.parse(document.getElementById("desk-canned").textContent);
  const state = {
    listView: "open",        // the conversation list's tab
    patron: null,            // sidebar data of the open conversation
    snapshot: null,          // last queue snapshot
    current: null,           // sender id of the open conversation
    shown: {},               // sender -> number of transcript items rendered
    unread: {},              // sender -> count of new patron messages not looked at
    windows: {},             // sender -> channel window
    conv: null,              // last conversation view of the open conversation
    knownWaiting: new Set(),
    knownAlerts: new Set(),
    sound: false,
    audio: null,
    firstSnapshot: true,
  };
  window.__desk = state;     // for tests and debugging
  state.alertsSounded = 0;

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const label = (k) => T.labels[k] || k;
  const channelName = (c) => T.channels[c] || c || "—";
  const typeName = (t) => T.types[t] || t;
  const fmtTime = (iso) => iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" }) : "";
  const fmtClock = (ts) => new Date(ts * 1000).toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai",
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const prioName = (p) => T.priority[String(p)] || p;
  const slotName = (k) => (T.slots && T.slots[k]) || k;
  const factName = (k) => (T.facts && T.facts[k]) || (T.slots && T.slots[k]) || k;
  function fmtValue(v) {
    if (v === true || v === false) return T.yesno[String(v)];
    if (Array.isArray(v)) return v.join("、");
    if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => `${factName(k)}：${fmtValue(x)}`).join("；");
    return String(v);
  }
  function waited(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    return s < 60 ? `${s}${label("seconds")}` : `${Math.floor(s / 60)}${label("minutes")}`;
  }
  function errorText(body) {
    return (body && T.errors[body.error]) || (body && body.error) || "error";
  }

  async function call(method, url, body) {
    const opts = { method, headers: { "Accept": "application/json", "X-Requested-With": "fetch" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = CSRF;
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    const r = await fetch(url, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = { error: "http_" + r.status }; }
    if (r.status === 401) { location.href = "/desk/login?next=/desk/"; }
    if (!r.ok) { const err = new Error(errorText(data)); err.body = data; err.status = r.status; throw err; }
    return data;
  }
  const convUrl = (sender, tail) => `/desk/api/conversations/${encodeURIComponent(sender)}${tail ? "/" + tail : ""}`;

  // ------------------------------------------------------------------ sound
  function beep(times) {
    state.alertsSounded += 1;
    if (!state.sound || !state.audio) return;
    const ctx = state.audio;
    for (let i = 0; i < (times || 1); i++) {
      const o = ctx.createOscillator(), g = ctx.createGain();
      o.type = "square"; o.frequency.value = i % 2 ? 660 : 880;
      g.gain.value = 0.08;
      o.connect(g); g.connect(ctx.destination);
      const t0 = ctx.currentTime + i * 0.35;
      o.start(t0); o.stop(t0 + 0.25);
    }
  }
  function notify(title, body, tag) {
    state.notified = (state.notified || 0) + 1;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const n = new Notification(title, { body, tag, lang: "zh-CN", requireInteraction: tag === "emergency" });
      n.onclick = () => { window.focus(); n.close(); };
    } catch (e) { /* some browsers allow notifications only from a service worker */ }
  }
  $("sound-btn").addEventListener("click", () => {
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
    state.sound = !state.sound;
    if (state.sound && !state.audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) state.audio = new Ctx();
    }
    if (state.audio && state.audio.state === "suspended") state.audio.resume();
    $("sound-btn").textContent = state.sound ? label("sound_on") : label("sound_off");
    if (state.sound) beep(1);
  });
  function banner(text) {
    const b = $("alert-banner");
    b.textContent = text;
    b.classList.remove("hidden");
    clearTimeout(banner.timer);
    banner.timer = setTimeout(() => b.classList.add("hidden"), 15000);
  }

  // ------------------------------------------------------------------ queue rendering
  $("name-btn").addEventListener("click", async () => {
    const name = prompt(label("enter_name"), $("my-name").textContent);
    if (name === null) return;
    try {
      const res = await call("POST", "/desk/api/profile", { display_name: name });
      $("my-name").textContent = res.display_name;
    } catch (e) { alert(e.message); }
  });

  function ticketLine(t) {
    if (!t) return null;
    return el("div", { class: "sub" }, `${label("ticket")} `,
      el("a", { href: `/desk/tickets/${encodeURIComponent(t.number)}`, target: "_blank" }, t.number),
      ` · ${typeName(t.type)}${t.category ? " · " + t.category : ""}`,
      t.overdue ? el("span", { class: "badge p1" }, label("overdue")) : null);
  }
  function prioBadge(p) {
    return el("span", { class: `badge p${p}` }, T.priority[String(p)] || p);
  }
  function renderList(id, items, render) {
    const ul = $(id);
    if (!ul) return;
    ul.replaceChildren();
    if (!items.length) { ul.append(el("li", { class: "empty" }, label("none"))); return; }
    for (const it of items) ul.append(render(it));
  }
  function renderQueue(snap) {
    state.snapshot = snap;
    $("queue-count").textContent = snap.waiting.length;
    $("mine-count").textContent = snap.mine.length;
    $("alerts-count").textContent = snap.alerts.length;
    renderList("alerts-list", snap.alerts, (a) => el("li", { class: a.emergency ? "emergency" : "p2", dataset: { ticket: a.number },
      title: `${a.summary || ""} · ${fmtTime(a.created_at)} · ${channelName(a.channel)}` },
      prioBadge(a.priority), " ",
      el("a", { href: `/desk/tickets/${encodeURIComponent(a.number)}`, target: "_blank" }, a.number), " ",
      el("span", { class: "strip-text" }, `${typeName(a.type)}${a.category ? " · " + a.category : ""} ${a.summary || ""}`),
      a.sender_id ? el("button", { class: "claim take-over", onclick: () => takeOver(a.number) }, label("take_over")) : null));
    renderList("queue-list", snap.waiting, (c) => el("li", {
      class: `queue-item ${c.emergency ? "emergency" : c.priority === 2 ? "p2" : ""}`, dataset: { sender: c.sender_id } },
      el("div", { class: "row" },
        el("span", {}, prioBadge(c.priority), " ", channelName(c.channel), " ",
          el("span", { class: "muted waited", dataset: { since: c.queued_at || "" } }, `${label("waited")} ${waited(c.queued_at)}`)),
        el("button", { class: "claim", onclick: () => claim(c.sender_id) }, label("claim"))),
      el("div", { class: "sub" }, c.sender_id),
      ticketLine(c.ticket)));
    renderList("mine-list", snap.mine, (c) => el("li", {
      class: `mine-item ${state.current === c.sender_id ? "selected" : ""} ${c.emergency ? "emergency" : ""}`, dataset: { sender: c.sender_id } },
      el("div", { class: "row" },
        el("span", {}, channelName(c.channel), " ", state.unread[c.sender_id] ? el("span", { class: "badge unread" }, `${state.unread[c.sender_id]} ${label("unread")}`) : null),
        el("button", { onclick: () => openConversation(c.sender_id) }, label("open"))),
      el("div", { class: "sub" }, c.sender_id),
      ticketLine(c.ticket)));
    if ($("others-list")) {
      renderList("others-list", snap.others, (c) => el("li", { dataset: { sender: c.sender_id } },
        el("div", { class: "row" }, el("span", {}, channelName(c.channel), " · ", `${label("held_by")} ${c.agent}`),
          el("button", { onclick: () => openConversation(c.sender_id) }, label("open"))),
        el("div", { class: "sub" }, c.sender_id), ticketLine(c.ticket)));
    }
    $("agents-online").textContent = snap.agents_online.length ? snap.agents_online.join("、") : label("none");

    // new waiting patrons and new alerts ring (not on the first snapshot after loading)
    const waitingIds = new Set(snap.waiting.map((c) => c.sender_id));
    const alertIds = new Set(snap.alerts.map((a) => a.number));
    if (!state.firstSnapshot) {
      const newAlerts = snap.alerts.filter((a) => !state.knownAlerts.has(a.number));
      const newWaiting = snap.waiting.filter((c) => !state.knownWaiting.has(c.sender_id));
      // Only new events ring, flash the banner and raise a desktop notification.
      if (newAlerts.some((a) => a.emergency) || newWaiting.some((c) => c.emergency)) {
        banner(label("alert_new")); beep(4);
        const a = newAlerts[0];
        notify(label("alert_new"), a ? `${a.number} ${typeName(a.type)} ${a.summary || ""}` : label("queue_new"), "emergency");
      } else if (newAlerts.length || newWaiting.length) {
        beep(1);
        notify(label("queue_new"), newWaiting.map((c) => channelName(c.channel)).join("、") || label("alert_new"), "queue");
      }
    }
    state.firstSnapshot = false;
    loadList();
    state.knownWaiting = waitingIds;
    state.knownAlerts = alertIds;
    document.title = (snap.waiting.length ? `(${snap.waiting.length}) ` : "") + BASE_TITLE;
    if (state.current && !snap.mine.some((c) => c.sender_id === state.current) && state.conv && state.conv.conversation &&
        state.conv.conversation.agent === me.username) {
      // No longer held by this agent: an agent may read it again only while it waits in the queue.
      if (me.role === "supervisor" || waitingIds.has(state.current)) refreshConversation(state.current);
      else leaveConversation(label("no_longer_yours"));
    }
  }
  setInterval(() => {
    document.querySelectorAll(".waited").forEach((n) => { n.textContent = `${label("waited")} ${waited(n.dataset.since)}`; });
  }, 5000);

  // ------------------------------------------------------------------ conversation pane
  function msgNode(m) {
    if (m.who === "system") return el("div", { class: "msg system", dataset: { index: m.index } }, T.system[m.code] || m.code);
    const who = m.who === "agent" && m.agent_name ? `${T.who.agent} ${m.agent_name}` : (T.who[m.who] || m.who);
    return el("div", { class: `msg ${m.who}`, dataset: { index: m.index, at: m.at } },
      el("span", { class: "who" }, `${who} · ${fmtClock(m.at)}`), m.text);
  }
  function noteNode(n) {
    return el("div", { class: "msg note", dataset: { note: n.id, at: new Date(n.at).getTime() / 1000 } },
      el("span", { class: "who" }, `${label("note")} · ${n.author} · ${fmtTime(n.at)}`), n.text);
  }
  function placeNote(n) {
    // Notes sit in the transcript at their time, among the messages.
    const box = $("transcript");
    if (box.querySelector(`[data-note="${n.id}"]`)) return;
    const node = noteNode(n), at = Number(node.dataset.at);
    const later = Array.from(box.children).find((c) => Number(c.dataset.at) > at);
    if (later) box.insertBefore(node, later); else box.append(node);
  }
  function appendItems(sender, items) {
    if (sender !== state.current) return;
    const box = $("transcript");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    let shown = state.shown[sender] || 0;
    for (const m of items) {
      if (m.index < shown) continue;
      const node = msgNode(m);
      const notes = Array.from(box.querySelectorAll(".msg.note")).filter((n) => Number(n.dataset.at) > m.at);
      if (notes.length) box.insertBefore(node, notes[0]); else box.append(node);
      shown = m.index + 1;
    }
    state.shown[sender] = shown;
    if (atBottom || true) box.scrollTop = box.scrollHeight;
  }
  function renderWindow(channel, w) {
    const box = $("window-box");
    box.replaceChildren();
    if (!w) return;
    if (!w.limited) {
      box.append(el("span", { class: "ok" }, w.live ? label("no_limit") : label("not_live")));
      return;
    }
    if (w.open) {
      const h = Math.floor(w.seconds_left / 3600), mnt = Math.floor((w.seconds_left % 3600) / 60);
      box.append(el("div", { class: "ok", id: "window-open" }, `${label("window_open")} · ${label("window_left")} ${h}${label("hours")}${mnt}${label("minutes")}`),
        el("div", { id: "quota-left" }, `${label("quota_left")}：${w.remaining} / ${w.quota}`));
    } else {
      box.append(el("div", { class: "bad", id: "window-closed" }, T.errors[w.reason] || label("window_closed")),
        el("div", {}, `${label("quota_left")}：${w.remaining} / ${w.quota}`));
    }
    const canSend = !w.limited || w.open;
    $("send-btn").disabled = !canSend;
  }
  function dl(node, pairs) {
    node.replaceChildren();
    const entries = pairs.filter(([, v]) => v !== undefined && v !== null && v !== "");
    if (!entries.length) { node.append(el("dd", {}, label("no_slots"))); return; }
    for (const [k, v] of entries) {
      node.append(el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
  }
  function renderConversation(view) {
    state.conv = view;
    const c = view.conversation || {};
    $("conv-empty").classList.add("hidden");
    $("conv").classList.remove("hidden");
    $("info").classList.remove("hidden");
    $("conv-title").textContent = view.sender_id;
    $("conv-channel").textContent = channelName(view.channel);
    $("conv-state").textContent = T.states[c.state] || c.state || "";
    const mine = c.state === "agent" && c.agent === me.username;
    for (const id of ["send-btn", "handback-btn", "close-btn", "transfer-btn"]) $(id).disabled = !mine && !(me.role === "supervisor" && c.state === "agent" && id !== "send-btn");
    $("reply-text").disabled = !mine;
    $("transcript").replaceChildren();
    state.shown[view.sender_id] = 0;
    appendItems(view.sender_id, view.transcript);
    renderWindow(view.channel, view.window);
    if (mine && view.window && view.window.limited && !view.window.open) $("send-btn").disabled = true;
    for (const n of view.notes || []) placeNote(n);
    dl($("slots"), (view.topic_slots || []).map(([k, v]) => [slotName(k), fmtValue(v)]));
    renderPatronMeta(view, null);
    loadPatron(view.sender_id);
    const tb = $("ticket-box");
    tb.replaceChildren();
    const t = view.ticket;
    if (t) {
      const meta = el("dl", { class: "meta" });
      dl(meta, [[label("ticket"), t.number], [label("type"), typeName(t.type)], [label("status"), T.statuses[t.status] || t.status],
        [label("priority"), prioName(t.priority)], [label("category"), t.category], [label("due"), fmtTime(t.reply_due) + (t.overdue ? " · " + label("overdue") : "")],
        [label("contact"), t.contact_name],
        [label("followup"), t.followup_at ? `${fmtTime(t.followup_at)}（${label("followup_" + t.followup_status)}）` : ""]]);
      tb.append(meta);
      const prio = el("select", { id: "priority-select", "aria-label": label("change_priority") },
        ...[1, 2, 3].map((p) => el("option", { value: p, selected: Math.min(t.priority, 3) === p }, prioName(p))));
      prio.addEventListener("change", async () => {
        try {
          await call("POST", `/desk/api/tickets/${encodeURIComponent(t.number)}/priority`, { priority: Number(prio.value) });
          showActionMsg(label("priority_saved"));
        } catch (e) { showActionMsg(e.message); }
      });
      tb.append(el("label", { class: "inline-field" }, `${label("change_priority")} `, prio));
      const facts = Object.entries(t.facts || {}).filter(([, v]) => v !== null && v !== "");
      if (facts.length) { const f = el("dl", { class: "meta", id: "ticket-facts" }); dl(f, facts.map(([k, v]) => [factName(k), k === "reason" && T.reasons[v] ? T.reasons[v] : fmtValue(v)])); tb.append(el("h3", {}, label("facts")), f); }
      tb.append(el("a", { href: `/desk/tickets/${encodeURIComponent(t.number)}`, target: "_blank", id: "ticket-link" }, label("view_ticket")));
    } else {
      tb.append(el("p", { class: "muted" }, label("none")));
    }
    const rb = $("related-box");
    rb.replaceChildren();
    if ((view.related || []).length) {
      rb.append(el("h3", {}, label("related")), el("ul", { class: "mini", id: "related-list" }, ...view.related.map((r) => el("li", {},
        el("a", { href: `/desk/tickets/${encodeURIComponent(r.number)}`, target: "_blank" }, r.number),
        ` ${typeName(r.type)}${r.category ? " · " + r.category : ""} · ${T.statuses[r.status] || r.status} · `, prioBadge(r.priority),
        r.summary ? el("div", { class: "sub" }, r.summary) : null))));
    }
    $("send-error").classList.add("hidden");
    $("action-msg").textContent = "";
    loadStaff();
    if (state.snapshot) renderQueue(state.snapshot);
  }
  async function openConversation(sender) {
    state.current = sender;
    state.unread[sender] = 0;
    try {
      renderConversation(await call("GET", convUrl(sender)));
    } catch (e) { showActionMsg(e.message); }
  }
  async function refreshConversation(sender) {
    if (sender !== state.current) return;
    try { renderConversation(await call("GET", convUrl(sender))); } catch (e) { /* gone */ }
  }
  function showActionMsg(text) { $("action-msg").textContent = text; }

  async function claim(sender) {
    try {
      const view = await call("POST", convUrl(sender, "claim"));
      state.current = sender;
      renderConversation(view);
    } catch (e) { alert(e.message); }
  }
  async function takeOver(number) {
    try {
      const view = await call("POST", `/desk/api/tickets/${encodeURIComponent(number)}/take-over`);
      state.current = view.sender_id;
      renderConversation(view);
    } catch (e) { alert(e.message); }
  }

  const noteMode = () => document.querySelector('input[name="mode"]:checked').value === "note";
  document.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener("change", () => {
    $("send-btn").textContent = noteMode() ? label("note").slice(0, 4) : "发送";
    document.querySelector(".composer").classList.toggle("noting", noteMode());
    if (noteMode()) $("send-btn").disabled = false;
  }));
  async function saveNote() {
    const sender = state.current, box = $("reply-text");
    const text = box.value.trim();
    if (!sender || !text) return;
    try {
      placeNote(await call("POST", convUrl(sender, "notes"), { text }));
      box.value = "";
      showActionMsg(label("note_saved"));
      $("transcript").scrollTop = $("transcript").scrollHeight;
    } catch (e) { showActionMsg(e.message); }
  }
  async function send() {
    if (noteMode()) return saveNote();
    const sender = state.current, box = $("reply-text");
    const text = box.value.trim();
    if (!sender || !text) return;
    $("send-btn").disabled = true;
    const err = $("send-error");
    err.classList.add("hidden");
    try {
      const res = await call("POST", convUrl(sender, "messages"), { text });
      box.value = "";
      state.windows[sender] = res.window;
      renderWindow(res.channel, res.window);
      if (!res.live) showActionMsg(label("sent_not_live"));
      await pullNow(sender);
    } catch (e) {
      err.replaceChildren(e.message);
      if (e.body && e.body.followup && state.conv && state.conv.ticket) {
        err.append(el("button", { id: "offer-followup", onclick: () => { $("followup-box").open = true; $("followup-at").focus(); } }, label("schedule_followup")));
      }
      if (e.body && e.body.window) renderWindow(state.conv && state.conv.channel, e.body.window);
      err.classList.remove("hidden");
    } finally {
      if (!state.conv || !state.conv.window || !state.conv.window.limited || (state.windows[sender] || state.conv.window).open) $("send-btn").disabled = false;
    }
  }
  async function pullNow(sender) {
    try {
      const view = await call("GET", convUrl(sender));
      state.conv = view;
      appendItems(sender, view.transcript);
      renderWindow(view.channel, view.window);
    } catch (e) { /* the stream will catch up */ }
  }
  $("send-btn").addEventListener("click", send);
  // Canned replies by shortcut: typing "/道歉" (or any word of a reply after "/") lists the matches.
  const suggest = { items: [], active: 0 };
  function cannedMatches(query) {
    const q = query.slice(1).trim();
    return CANNED.filter((c) => !q || c.shortcut.slice(1).includes(q) || c.text.includes(q) || (c.label || "").includes(q)).slice(0, 8);
  }
  function slashQuery() {
    const box = $("reply-text");
    const before = box.value.slice(0, box.selectionStart);
    const m = /(^|\s)(\/[^\s/]*)$/.exec(before);
    return m ? m[2] : null;
  }
  function renderSuggest() {
    const ul = $("canned-suggest");
    const q = slashQuery();
    suggest.items = q !== null ? cannedMatches(q) : [];
    ul.replaceChildren();
    if (!suggest.items.length) { ul.classList.add("hidden"); return; }
    suggest.active = Math.min(suggest.active, suggest.items.length - 1);
    suggest.items.forEach((c, i) => ul.append(el("li", { role: "option", class: i === suggest.active ? "on" : "", "aria-selected": i === suggest.active ? "true" : "false",
      onmousedown: (e) => { e.preventDefault(); pickSuggest(i); } }, el("b", {}, c.shortcut), " ", c.text)));
    ul.classList.remove("hidden");
  }
  function pickSuggest(i) {
    const c = suggest.items[i];
    const box = $("reply-text"), q = slashQuery();
    if (!c || q === null) return;
    const start = box.selectionStart - q.length;
    box.value = box.value.slice(0, start) + c.text + box.value.slice(box.selectionStart);
    box.selectionStart = box.selectionEnd = start + c.text.length;
    suggest.items = [];
    $("canned-suggest").classList.add("hidden");
    box.focus();
  }
  $("reply-text").addEventListener("input", () => { suggest.active = 0; renderSuggest(); });
  $("reply-text").addEventListener("blur", () => setTimeout(() => $("canned-suggest").classList.add("hidden"), 150));
  $("reply-text").addEventListener("keydown", (e) => {
    // the list may have been hidden by a blur (a live update took focus a moment): the shortcut still picks
    if (suggest.items.length && (!$("canned-suggest").classList.contains("hidden") || slashQuery() !== null)) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        suggest.active = (suggest.active + (e.key === "ArrowDown" ? 1 : suggest.items.length - 1)) % suggest.items.length;
        renderSuggest(); return;
      }
      if ((e.key === "Enter" && !e.ctrlKey && !e.metaKey && !e.isComposing) || e.key === "Tab") { e.preventDefault(); pickSuggest(suggest.active); return; }
      if (e.key === "Escape") { $("canned-suggest").classList.add("hidden"); suggest.items = []; return; }
    }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
  });
  $("canned").addEventListener("change", (e) => {
    if (!e.target.value) return;
    const box = $("reply-text");
    box.value = box.value ? box.value + e.target.value : e.target.value;
    e.target.value = "";
    box.focus();
  });

  function leaveConversation(msg) {
    showActionMsg(msg);
    state.current = null; state.conv = null;
    $("conv").classList.add("hidden");
    $("conv-empty").classList.remove("hidden");
    $("conv-empty").textContent = msg;
    $("info").classList.add("hidden");
  }
  $("handback-btn").addEventListener("click", async () => {
    try { await call("POST", convUrl(state.current, "handback")); leaveConversation(label("handed_back")); }
    catch (e) { showActionMsg(e.message); }
  });
  $("close-btn").addEventListener("click", async () => {
    try {
      await call("POST", convUrl(state.current, "close"), { resolution: $("close-resolution").value, category: $("close-category").value });
      leaveConversation(label("closed"));
    } catch (e) { showActionMsg(e.message); }
  });
  $("transfer-btn").addEventListener("click", async () => {
    const to = $("transfer-to").value;
    try { await call("POST", convUrl(state.current, "transfer"), { to }); leaveConversation(`${label("transferred")} ${to}`); }
    catch (e) { showActionMsg(e.message); }
  });
  $("followup-btn").addEventListener("click", async () => {
    const t = state.conv && state.conv.ticket;
    if (!t) return;
    try {
      await call("POST", `/desk/api/tickets/${encodeURIComponent(t.number)}/followup`, { followup_at: $("followup-at").value, note: $("followup-note").value });
      await refreshConversation(state.current);
      showActionMsg(label("followup_saved"));
    } catch (e) { showActionMsg(e.message); }
  });
  $("resolve-btn").addEventListener("click", async () => {
    const t = state.conv && state.conv.ticket;
    if (!t) return;
    try {
      await call("POST", `/desk/api/tickets/${encodeURIComponent(t.number)}/resolve`, { resolution: $("resolve-resolution").value, category: $("resolve-category").value });
      await refreshConversation(state.current);
      showActionMsg(label("resolved"));
    } catch (e) { showActionMsg(e.message); }
  });
  function renderPatronMeta(view, p) {
    const t = view.ticket || {};
    const phone = p ? p.phone_masked : t.contact_phone;
    const phoneTicket = p ? p.phone_ticket : (t.has_phone ? t.number : null);
    const node = $("patron-meta");
    dl(node, [[label("sender"), view.sender_id], [label("channel_of"), channelName(view.channel)],
      [label("state"), T.states[(view.conversation || {}).state] || ""], [label("agent"), (view.conversation || {}).agent],
      [label("queued_at"), fmtTime((view.conversation || {}).queued_at)], [label("contact_of"), (p && p.contact_name) || t.contact_name]]);
    const dd = el("dd", { id: "patron-phone" }, phone || label("no_phone"));
    if (phone && phoneTicket) {
      dd.append(" ", el("button", { type: "button", id: "reveal-phone", class: "link", onclick: async () => {
        try {
          const r = await call("POST", `/desk/api/tickets/${encodeURIComponent(phoneTicket)}/reveal-phone`);
          dd.replaceChildren(r.phone, " ", el("span", { class: "muted" }, label("revealed")));
        } catch (e) { showActionMsg(e.message); }
      } }, label("reveal")));
    }
    node.append(el("dt", {}, label("phone_of")), dd);
  }
  function renderLabels(labels) {
    const chips = $("label-chips"), head = $("conv-labels");
    chips.replaceChildren(); head.replaceChildren();
    for (const l of labels || []) {
      chips.append(el("span", { class: "chip" }, l, el("button", { type: "button", "aria-label": `删除标签 ${l}`, onclick: () => changeLabels([], [l]) }, "×")));
      head.append(el("span", { class: "chip small" }, l));
    }
  }
  async function changeLabels(add, remove) {
    if (!state.current) return;
    try {
      const r = await call("POST", convUrl(state.current, "labels"), { add, remove });
      renderLabels(r.labels);
      showActionMsg(label("labels_saved"));
      loadList();
    } catch (e) { showActionMsg(e.message); }
  }
  $("label-input").addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.isComposing) return;
    e.preventDefault();
    const v = e.target.value.trim();
    if (v) changeLabels([v], []);
    e.target.value = "";
  });
  async function loadPatron(sender) {
    try {
      const p = await call("GET", convUrl(sender, "patron"));
      if (sender !== state.current) return;
      state.patron = p;
      renderPatronMeta(state.conv, p);
      renderLabels(p.labels);
      const tl = $("patron-tickets");
      tl.replaceChildren();
      if (!p.tickets.length) tl.append(el("li", { class: "muted" }, label("none")));
      for (const t of p.tickets) tl.append(el("li", {}, el("a", { href: `/desk/tickets/${encodeURIComponent(t.number)}`, target: "_blank" }, t.number),
        ` ${typeName(t.type)} · ${T.statuses[t.status] || t.status} · ${fmtTime(t.created_at)}`));
      if (p.other_conversations.length) tl.append(el("li", { class: "muted" }, `${label("other_convs")}：${p.other_conversations.length}`));
      const rl = $("patron-ratings");
      rl.replaceChildren();
      if (!p.ratings.length) rl.append(el("li", { class: "muted" }, label("no_ratings")));
      for (const r of p.ratings) rl.append(el("li", { class: r.score <= 2 ? "low" : "" },
        el("b", {}, `${"★".repeat(r.score)}${"☆".repeat(5 - r.score)} ${r.score}${label("score_unit")}`),
        ` · ${fmtTime(r.at)}${r.agent_name ? " · " + r.agent_name : ""} · ${T.triggers[r.trigger] || r.trigger}`,
        r.comment ? el("div", { class: "sub" }, `“${r.comment}”`) : null,
        r.followup_ticket ? el("div", { class: "sub" }, `${label("rated_low_followup")} `,
          el("a", { href: `/desk/tickets/${encodeURIComponent(r.followup_ticket)}`, target: "_blank" }, r.followup_ticket)) : null));
      for (const n of p.notes || []) placeNote(n);
    } catch (e) { /* the conversation pane shows the error if any */ }
  }
  document.querySelectorAll("#list-tabs button").forEach((b) => b.addEventListener("click", () => {
    state.listView = b.dataset.view;
    document.querySelectorAll("#list-tabs button").forEach((x) => { x.classList.toggle("on", x === b); x.setAttribute("aria-selected", x === b ? "true" : "false"); });
    loadList();
  }));
  async function loadList() {
    clearTimeout(loadList.timer);
    loadList.timer = setTimeout(loadList, 15000);
    try {
      const data = await call("GET", `/desk/api/conversation-list?view=${state.listView}`);
      renderList("conv-list", data.conversations, (c) => el("li", { class: `conv-row ${state.current === c.sender_id ? "selected" : ""}`, dataset: { sender: c.sender_id },
          onclick: () => openConversation(c.sender_id) },
        el("div", { class: "row" },
          el("span", {}, prioBadge(c.priority), " ", channelName(c.channel), " · ", T.states[c.state] || c.state, c.agent ? ` · ${c.agent}` : ""),
          el("span", { class: "muted waited", dataset: { since: c.last_patron_at ? new Date(c.last_patron_at * 1000).toISOString() : (c.queued_at || "") } },
            `${label("waited")} ${waited(c.last_patron_at ? new Date(c.last_patron_at * 1000).toISOString() : c.queued_at)}`)),
        c.last ? el("div", { class: "sub last" }, `${c.last.who === "patron" ? T.who.patron : c.last.who === "agent" ? T.who.agent : T.who.bot}：${c.last.text}`) : null,
        (c.labels || []).length ? el("div", { class: "sub" }, ...c.labels.map((l) => el("span", { class: "chip small" }, l))) : null));
    } catch (e) { /* retried on the next snapshot */ }
  }

  async function loadStaff() {
    try {
      const data = await call("GET", "/desk/api/staff");
      const sel = $("transfer-to");
      sel.replaceChildren(el("option", { value: "" }, label("pick_agent")));
      for (const s of data.staff) {
        if (s.username === me.username) continue;
        sel.append(el("option", { value: s.username }, `${s.username}${s.online ? "（" + label("online") + "）" : "（" + label("offline") + "）"}`));
      }
    } catch (e) { /* ignore */ }
  }

  // ------------------------------------------------------------------ live stream
  function setConn(kind) {
    const s = $("conn-status");
    s.className = `status ${kind}`;
    s.textContent = label(kind);
  }
  function connect() {
    const es = new EventSource("/desk/api/events");
    state.es = es;
    es.addEventListener("open", () => setConn("online"));
    es.addEventListener("error", () => setConn(es.readyState === EventSource.CLOSED ? "offline" : "reconnecting"));
    es.addEventListener("queue", (e) => { setConn("online"); renderQueue(JSON.parse(e.data)); });
    es.addEventListener("messages", (e) => {
      const d = JSON.parse(e.data);
      state.windows[d.sender_id] = d.window;
      if (d.sender_id === state.current) {
        appendItems(d.sender_id, d.items);
        renderWindow(d.channel, d.window);
      } else {
        const n = d.items.filter((m) => m.who === "patron" && m.index >= (state.shown[d.sender_id] || 0)).length;
        if (n && state.shown[d.sender_id] !== undefined) { state.unread[d.sender_id] = (state.unread[d.sender_id] || 0) + n; }
        if (state.snapshot) renderQueue(state.snapshot);
      }
    });
    es.addEventListener("alert", (e) => {
      const d = JSON.parse(e.data);
      if (d.kind === "emergency") { banner(`${label("alert_new")}：${d.ticket || ""} ${d.text || ""}`); beep(4); }
      else beep(1);
    });
  }
  connect();
  window.addEventListener("pagehide", () => { if (state.es) state.es.close(); });
})();
