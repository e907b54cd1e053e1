// kei message web: draws the state the server sends, live.
// Every value from the mailbox goes into the page through textContent (or an
// SVG attribute we compute, never one named by the data): a message is text,
// whatever it holds. No innerHTML, no eval, no inline handlers; the page only
// ever GETs from its own server.
"use strict";

(function () {
  const token = new URLSearchParams(location.search).get("token") || "";
  const SVG = "http://www.w3.org/2000/svg";
  let last = null; // the newest state
  let skew = 0; // server clock minus ours, in ms

  function api(path) {
    return path + (path.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(token);
  }

  // Control characters and bidirectional overrides shown as escapes, as the
  // terminal does (render.neutralise): no message can reorder what is shown.
  const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
  function safe(value) {
    return String(value === undefined || value === null ? "" : value).replace(UNSAFE, function (c) {
      const n = c.charCodeAt(0);
      return n < 0x100 ? "\\x" + n.toString(16).padStart(2, "0") : "\\u" + n.toString(16).padStart(4, "0");
    });
  }
  function line(value) {
    return safe(String(value === undefined || value === null ? "" : value).replace(/\r?\n/g, " \u21b5 "));
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const key in attrs) node.setAttribute(key, String(attrs[key]));
    return node;
  }

  function epoch(ts) {
    const t = Date.parse(ts);
    return isNaN(t) ? null : t;
  }
  function age(ms) {
    if (ms === null || ms === undefined) return "-";
    let s = Math.max(0, Math.floor(ms / 1000));
    if (s >= 86400) return Math.floor(s / 86400) + "d";
    if (s >= 3600) return Math.floor(s / 3600) + "h";
    if (s >= 60) return Math.floor(s / 60) + "m";
    return s + "s";
  }
  function since(ts) {
    const t = typeof ts === "string" ? epoch(ts) : null;
    return t === null ? "-" : age(Date.now() + skew - t);
  }

  // ---------------------------------------------------------------- sessions
  function drawSessions(state) {
    const body = document.querySelector("#sessions tbody");
    const rows = [];
    for (const row of state.names || []) {
      const sessions = row.sessions && row.sessions.length ? row.sessions : [null];
      sessions.forEach(function (sess, i) {
        const tr = el("tr");
        tr.dataset.name = String(row.name);
        const first = i === 0;
        const st = (sess && sess.state) || (first ? row.state : null);
        tr.append(
          el("td", "name", first ? line(row.name) : ""),
          el("td", "mono", sess && sess.session ? line(sess.session) : "-"),
          el("td", "", sess ? line(sess.agent) : "-"),
          el("td", st ? "state-" + String(st).replace(/[^a-z]/g, "") : "", st ? line(st) : "-"),
          el("td", "", first ? (row.waiter ? "yes" : "-") : ""),
          el("td", "num" + (first && row.unread ? " unread" : ""), first ? String(Number(row.unread) || 0) : ""),
          el("td", "num", first && row.unread ? since(row.oldest_unread) : ""),
          el("td", "num", since((sess && sess.last_seen) || (first ? row.last_seen : null)))
        );
        rows.push(tr);
      });
    }
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", "meta", "nobody yet: no message sent, no session registered");
      td.colSpan = 8;
      tr.append(td);
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
  }

  // ---------------------------------------------------------------- messages
  function messageItem(rec) {
    const li = el("li", "message");
    li.dataset.id = String(rec.id);
    const meta = el("div", "meta");
    const when = epoch(rec.ts);
    meta.append(
      el("span", "", when === null ? line(rec.ts) : new Date(when).toLocaleString()),
      document.createTextNode("  #" + line(rec.id) + (rec.reply_to !== undefined ? "  re #" + line(rec.reply_to) : ""))
    );
    const head = el("div");
    head.append(el("span", "who", line(rec.from)), document.createTextNode(" \u2192 "), el("span", "who", line(rec.to)), document.createTextNode(" "));
    if (typeof rec.kind === "string" && rec.kind) {
      head.append(el("span", "kind kind-" + rec.kind.replace(/[^A-Z]/g, ""), line(rec.kind)));
    }
    li.append(meta, head, el("div", "body", safe(rec.body)));
    return li;
  }

  function drawMessages(state) {
    const list = document.getElementById("messages");
    const items = (state.messages || []).slice().reverse().map(messageItem);
    if (!items.length) items.push(el("li", "meta", "no messages yet"));
    list.replaceChildren.apply(list, items);
  }

  // ---------------------------------------------------------------- graph
  function drawGraph(state) {
    const root = document.getElementById("graph");
    const W = 480, H = 360, cx = W / 2, cy = H / 2;
    const graph = state.graph || { nodes: [], edges: [] };
    const active = new Set();
    for (const e of graph.edges) { active.add(e.from); active.add(e.to); }
    const nodes = graph.nodes.filter(function (n) { return active.has(n); });
    const parts = [];
    const defs = svg("defs", {});
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 10, markerHeight: 10, markerUnits: "userSpaceOnUse", orient: "auto" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#0969da" }));
    defs.append(marker);
    parts.push(defs);
    if (!nodes.length) {
      const t = svg("text", { x: cx, y: cy, class: "empty" });
      t.textContent = "no messages in the last 24 h";
      parts.push(t);
      root.replaceChildren.apply(root, parts);
      return;
    }
    const r = Math.min(W, H) / 2 - 46, R = 22;
    const at = {};
    nodes.forEach(function (n, i) {
      const a = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
      at[n] = nodes.length === 1 ? [cx, cy] : [cx + r * Math.cos(a), cy + r * Math.sin(a)];
    });
    const most = Math.max.apply(null, graph.edges.map(function (e) { return e.count; }).concat([1]));
    for (const e of graph.edges) {
      const a = at[e.from], b = at[e.to];
      if (!a || !b || e.from === e.to) continue;
      const dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len;
      // bend each arrow to its right, so a->b and b->a stay apart
      const bend = 18, mx = (a[0] + b[0]) / 2 - uy * bend, my = (a[1] + b[1]) / 2 + ux * bend;
      const sx = a[0] + ux * R, sy = a[1] + uy * R, ex = b[0] - ux * (R + 2), ey = b[1] - uy * (R + 2);
      const width = 1 + 5 * Math.sqrt(e.count / most);
      const path = svg("path", { d: "M" + sx + "," + sy + " Q" + mx + "," + my + " " + ex + "," + ey, class: "edge", "stroke-width": width.toFixed(2), "marker-end": "url(#arrow)" });
      const title = svg("title", {});
      title.textContent = line(e.from) + " \u2192 " + line(e.to) + ": " + e.count;
      path.append(title);
      const label = svg("text", { x: mx, y: my - 3, class: "count" });
      label.textContent = String(Number(e.count) || 0);
      parts.push(path, label);
    }
    for (const n of nodes) {
      const g = svg("g", { class: n === "all" ? "node all" : "node" });
      g.append(svg("circle", { cx: at[n][0], cy: at[n][1], r: R }));
      const t = svg("text", { x: at[n][0], y: at[n][1] + R + 14 });
      const shown = line(n);
      t.textContent = shown.length > 18 ? shown.slice(0, 17) + "\u2026" : shown;
      g.append(t);
      parts.push(g);
    }
    root.replaceChildren.apply(root, parts);
  }

  // ---------------------------------------------------------------- thread
  function showThread(id) {
    fetch(api("/api/message/" + encodeURIComponent(id)), { credentials: "omit" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (data) {
        const box = document.getElementById("thread");
        const list = document.getElementById("thread-messages");
        const receipts = document.getElementById("receipts");
        if (!data) {
          list.replaceChildren(el("li", "meta", "this message is no longer in the bus"));
          receipts.replaceChildren();
          box.hidden = false;
          return;
        }
        list.replaceChildren.apply(list, data.thread.map(function (rec) {
          const li = messageItem(rec);
          if (rec.id === data.id) li.classList.add("focus");
          return li;
        }));
        if (data.receipts === null || data.receipts === undefined) {
          receipts.replaceChildren(el("p", "meta", "no receipts kept for this message"));
        } else {
          receipts.replaceChildren(el("pre", "mono", safe(JSON.stringify(data.receipts, null, 2))));
        }
        box.hidden = false;
        box.scrollIntoView({ block: "nearest" });
      })
      .catch(function () {});
  }

  // ---------------------------------------------------------------- wiring
  function draw(state) {
    last = state;
    const now = epoch(state.now);
    if (now !== null) skew = now - Date.now();
    document.getElementById("where").textContent = line(state.store) + "  " + line(state.location);
    drawSessions(state);
    drawMessages(state);
    drawGraph(state);
    document.body.dataset.updates = String((Number(document.body.dataset.updates) || 0) + 1);
  }

  function status(text, cls) {
    const s = document.getElementById("status");
    s.textContent = text;
    s.className = "status " + cls;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("messages").addEventListener("click", function (ev) {
      const li = ev.target instanceof Element ? ev.target.closest("li.message") : null;
      if (li && li.dataset.id) showThread(li.dataset.id);
    });
    document.getElementById("close").addEventListener("click", function () {
      document.getElementById("thread").hidden = true;
    });
    fetch(api("/api/state"), { credentials: "omit" })
      .then(function (res) { return res.json(); })
      .then(draw)
      .catch(function () {});
    const events = new EventSource(api("/api/events"));
    events.addEventListener("state", function (ev) { draw(JSON.parse(ev.data)); });
    events.addEventListener("open", function () { status("live", "live"); });
    events.addEventListener("error", function () { status("reconnecting", "down"); });
    // ages move with the clock, not with the mailbox
    setInterval(function () { if (last) drawSessions(last); }, 5000);
  });
})();
