// fmn: small conveniences on top of pages that work without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A "Copy" button next to every secret shown once.
  for (const input of document.querySelectorAll("input[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (input.labels[0]?.textContent || "value"));
    button.addEventListener("click", async () => {
      input.select();
      try { await navigator.clipboard.writeText(input.value); button.textContent = "Copied"; }
      catch { button.textContent = "Select and copy"; }
    });
    input.after(button);
  }
  // Regexes checked as you type (JavaScript's dialect is close to Rust's; the server has
  // the last word and names the field when it refuses).
  const kind = document.getElementById("kind");
  const value = document.querySelector("input[data-regex-check]");
  if (kind && value) {
    const check = () => {
      let message = "";
      if (/regex/.test(kind.value) && value.value) {
        try { new RegExp(value.value); } catch (e) { message = "Not a valid regular expression"; }
      }
      value.setCustomValidity(message);
      value.setAttribute("aria-invalid", message ? "true" : "false");
    };
    value.addEventListener("input", check);
    kind.addEventListener("change", check);
  }
  inboxLive();
});

// The inbox, live: the bell's count and the inbox page follow the WebSocket; after a
// reconnect, what was missed comes from the inbox API (`after=` the newest id seen).
function inboxLive() {
  const bell = document.getElementById("inbox-link");
  if (!bell || !bell.dataset.socket || !("WebSocket" in window)) return;
  const user = bell.dataset.user;
  const list = document.getElementById("inbox-list");
  const seen = new Set();
  let newest = list ? list.dataset.newest || "" : "";
  for (const li of list ? list.querySelectorAll("li[data-id]") : []) seen.add(li.dataset.id);
  let count = document.getElementById("inbox-count");
  const setCount = (n) => {
    if (!count) {
      count = document.createElement("span");
      count.id = "inbox-count";
      count.className = "count";
      bell.append(" ", count);
    }
    count.textContent = String(n);
    const sr = document.createElement("span");
    sr.className = "sr-only";
    sr.textContent = " unread";
    count.append(sr);
    count.hidden = n === 0;
    const onPage = document.getElementById("inbox-unread");
    if (onPage) onPage.textContent = String(n);
  };
  const unread = () => parseInt(count ? count.firstChild?.textContent || "0" : "0", 10) || 0;
  const text = (tag, className, content) => {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (content) el.textContent = content;
    return el;
  };
  const link = (href, content) => {
    const a = text("a", "", content);
    // Only web links (an item's link comes from a bus message).
    if (/^https?:\/\//i.test(href) || href.startsWith("/")) a.href = href;
    return a;
  };
  const show = (item) => {
    if (seen.has(item.id)) return;
    seen.add(item.id);
    if (item.id > newest) newest = item.id;
    if (!item.read) setCount(unread() + 1);
    if (!list) return;
    document.getElementById("inbox-empty")?.remove();
    const li = text("li", "inbox-item severity-" + String(item.severity).replace(/[^a-z]/g, "") + (item.read ? "" : " unread"));
    li.dataset.id = item.id;
    const summary = text("p", "summary");
    if (!item.read) summary.append(text("span", "badge unread-badge", "unread"), " ");
    summary.append(item.link ? link(item.link, item.summary) : item.summary);
    const meta = text("p", "meta");
    const time = text("time", "", new Date(item.created).toISOString().slice(0, 16).replace("T", " ") + " UTC");
    time.dateTime = item.created;
    meta.append(time, " · ", text("span", "topic", item.topic));
    if (item.severity !== "info") meta.append(" · ", text("span", "severity", item.severity));
    if (item.filter) {
      meta.append(" · filter ");
      meta.append(item.filter_url ? link(new URL(item.filter_url, location.href).pathname, item.filter) : item.filter);
    }
    li.append(summary, meta);
    if (!item.read) {
      const form = text("form", "inline");
      form.method = "post";
      form.action = "/users/" + encodeURIComponent(user) + "/inbox/" + encodeURIComponent(item.id) + "/read";
      const csrf = text("input");
      csrf.type = "hidden";
      csrf.name = "csrf";
      csrf.value = list.dataset.csrf || "";
      const button = text("button", "link", "Mark read");
      button.type = "submit";
      button.append(text("span", "sr-only", ": " + item.summary));
      form.append(csrf, button);
      li.append(form);
    }
    list.prepend(li);
  };
  let delay = 1000;
  let connectedOnce = false;
  const backfill = async () => {
    const after = newest ? "&after=" + encodeURIComponent(newest) : "";
    try {
      const r = await fetch("/api/v1/users/" + encodeURIComponent(user) + "/inbox?limit=200" + after,
        { credentials: "same-origin", headers: { accept: "application/json" } });
      if (!r.ok) return;
      const page = await r.json();
      for (const item of page.items.slice().reverse()) show(item);
      setCount(page.unread);
    } catch { /* the next reconnect tries again */ }
  };
  const connect = () => {
    let socket;
    try { socket = new WebSocket(bell.dataset.socket); } catch { return; }
    let ping;
    socket.addEventListener("open", () => {
      delay = 1000;
      if (connectedOnce) backfill();
      connectedOnce = true;
      // Keepalive inside API Gateway's 10-minute idle limit.
      ping = setInterval(() => socket.send(JSON.stringify({ action: "ping" })), 5 * 60 * 1000);
    });
    socket.addEventListener("message", (e) => {
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      if (frame.type === "item" && frame.item) show(frame.item);
    });
    socket.addEventListener("close", () => {
      clearInterval(ping);
      // Reconnect with backoff (also after API Gateway's 2-hour cap).
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 60 * 1000);
      connectedOnce = true;
    });
  };
  connect();
}
