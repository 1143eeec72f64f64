// The web chat page: conversation list, transcript, message box, settings, usage.
// All message HTML comes from the server, sanitized; this module only places it.

import {ReplyView, followRun} from "./stream.js";
import {compact, drawUsageChart} from "./chart.js";

const $ = (id) => document.getElementById(id);
const els = {
  app: $("app"), sidebar: $("sidebar"), scrim: $("scrim"), sidebarToggle: $("sidebar-toggle"),
  newChat: $("new-chat"), search: $("search"), list: $("conversation-list"), listEmpty: $("list-empty"),
  title: $("title"), rename: $("rename"), del: $("delete"), exportMenu: $("export-menu"),
  exportMd: $("export-md"), exportJson: $("export-json"), model: $("model"), persona: $("persona"),
  editSystem: $("edit-system"), thinking: $("thinking"), usagePanel: $("usage-panel"), totals: $("totals"),
  chart: $("usage-chart"), transcript: $("transcript"), welcome: $("welcome"), welcomeModel: $("welcome-model"),
  messages: $("messages"), jump: $("jump"), composer: $("composer"), message: $("message"), send: $("send"),
  stop: $("stop"), editingNote: $("editing-note"), cancelEdit: $("cancel-edit"), status: $("status"),
  announcer: $("announcer"), toast: $("toast"), confirmDialog: $("confirm-dialog"), confirmText: $("confirm-text"),
  confirmOk: $("confirm-ok"), textDialog: $("text-dialog"), textLabel: $("text-label"), textInput: $("text-input"),
  textArea: $("text-area"),
};

const state = {
  config: null,
  models: [],
  conversation: null, // the open conversation's row, or null for a new chat
  draft: {model: null, persona: null, system: null, thinking: false}, // a new chat's settings
  usage: null,
  window: null,
  run: null, // {id, article, view, handle, chars, usage}
  editing: false,
  following: true,
};

// -- small helpers ------------------------------------------------------------------------------

class RequestError extends Error {
  constructor(status, type, message) { super(message); this.status = status; this.type = type; }
}

async function api(method, url, body) {
  const options = {method, headers: {}};
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new RequestError(response.status, error.type ?? "error", error.message ?? `${response.status} ${response.statusText}`);
  }
  return data;
}

let toastTimer = 0;
function toast(message) {
  els.toast.textContent = message;
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { els.toast.hidden = true; }, 6000);
}

function announce(message) {
  els.announcer.textContent = "";
  // A fresh text node after a tick, so the same message twice is still read.
  setTimeout(() => { els.announcer.textContent = message; }, 30);
}

function formatCost(cost) {
  if (cost == null) return "n/a";
  if (cost === 0) return "$0.00";
  if (cost < 0.01) return `$${cost.toFixed(4)}`;
  return `$${cost.toFixed(2)}`;
}

function button(label, {name = label, className = "action", pressed, onClick} = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = label;
  if (name !== label) b.setAttribute("aria-label", name);
  if (pressed !== undefined) b.setAttribute("aria-pressed", String(pressed));
  if (onClick) b.addEventListener("click", onClick);
  return b;
}

function relativeTime(stamp) {
  const then = new Date(stamp);
  if (Number.isNaN(then.getTime())) return "";
  const seconds = (Date.now() - then.getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return then.toLocaleDateString();
}

// -- dialogs ------------------------------------------------------------------------------------

function confirmAction(message, okLabel = "Delete") {
  return new Promise((resolve) => {
    els.confirmText.textContent = message;
    els.confirmOk.textContent = okLabel;
    els.confirmDialog.returnValue = "";
    els.confirmDialog.addEventListener("close", () => resolve(els.confirmDialog.returnValue === "ok"), {once: true});
    els.confirmDialog.showModal();
  });
}

function askText(label, value, {multiline = false} = {}) {
  return new Promise((resolve) => {
    els.textLabel.textContent = label;
    const field = multiline ? els.textArea : els.textInput;
    els.textInput.hidden = multiline;
    els.textArea.hidden = !multiline;
    els.textLabel.htmlFor = field.id;
    field.value = value;
    els.textDialog.returnValue = "";
    els.textDialog.addEventListener("close", () => {
      resolve(els.textDialog.returnValue === "ok" ? field.value : null);
    }, {once: true});
    els.textDialog.showModal();
    field.focus();
    field.select();
  });
}

// -- following the reply ------------------------------------------------------------------------

function atBottom() {
  const t = els.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 48;
}

function follow() {
  if (state.following) {
    els.transcript.scrollTop = els.transcript.scrollHeight;
    els.jump.hidden = true;
  } else if (state.run) {
    els.jump.hidden = false;
  }
}

els.transcript.addEventListener("scroll", () => {
  state.following = atBottom();
  if (state.following) els.jump.hidden = true;
}, {passive: true});

els.jump.addEventListener("click", () => {
  state.following = true;
  follow();
  els.message.focus();
});

// -- articles -----------------------------------------------------------------------------------

const ROLE_LABEL = {user: "You", assistant: "Assistant", system: "System"};

function makeArticle({role, index, status = "complete", html = "", text = ""}) {
  const article = document.createElement("article");
  article.className = "message";
  article.dataset.role = role;
  article.dataset.status = status;
  article.dataset.index = String(index);
  article.setAttribute("aria-label", role === "user" ? "Your message" : role === "assistant" ? "Reply" : "System message");
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = ROLE_LABEL[role] ?? role;
  const windowNote = document.createElement("span");
  windowNote.className = "window-note";
  windowNote.textContent = "outside the context window";
  windowNote.hidden = true;
  meta.append(who, windowNote);
  const content = document.createElement("div");
  content.className = "content";
  content.innerHTML = html;
  const notice = document.createElement("div");
  notice.className = "notice";
  notice.hidden = true;
  const footer = document.createElement("div");
  footer.className = "message-footer";
  const actions = document.createElement("div");
  actions.className = "actions";
  const usage = document.createElement("span");
  usage.className = "usage";
  footer.append(actions, usage);
  article.append(meta, content, notice, footer);
  article._text = text;
  return article;
}

function articleText(article) {
  if (article._text) return article._text;
  return article.querySelector(".content").innerText;
}

function setUsage(article, usage, cost, live = false) {
  const span = article.querySelector(".usage");
  if (!usage) { span.textContent = ""; return; }
  const out = live && !usage.output_tokens ? `~${usage.estimate ?? 0}` : compact(usage.output_tokens);
  span.textContent = `in ${compact(usage.input_tokens)} · out ${out}` + (cost != null || !live ? ` · ${formatCost(cost)}` : "");
}

function setStatus(article, status, error) {
  article.dataset.status = status;
  const notice = article.querySelector(".notice");
  if (status === "interrupted") {
    notice.textContent = "Stopped — the reply is incomplete.";
    notice.hidden = false;
  } else if (status === "error") {
    notice.textContent = `The reply failed${error ? `: ${error}` : "."}`;
    notice.hidden = false;
  } else {
    notice.hidden = true;
  }
}

function applyMeta(article, a) {
  article.dataset.index = String(a.index);
  article.dataset.last = String(a.last);
  article._text = a.text;
  article._pinned = Boolean(a.pinned);
  article.classList.toggle("outside-window", !a.in_window);
  article.querySelector(".window-note").hidden = Boolean(a.in_window);
  setStatus(article, a.status, null);
  if (a.role === "assistant") setUsage(article, a.usage, a.cost);
}

function articles() {
  return [...els.messages.querySelectorAll("article.message")];
}

function refreshActions() {
  const all = articles();
  const running = Boolean(state.run);
  const lastUser = [...all].reverse().find((a) => a.dataset.role === "user");
  const lastReply = all.at(-1)?.dataset.role === "assistant" ? all.at(-1) : null;
  for (const article of all) {
    const box = article.querySelector(".actions");
    box.replaceChildren();
    const streaming = article.dataset.status === "streaming";
    box.append(button("Copy", {onClick: () => copyText(articleText(article), "Message copied")}));
    if (streaming || !state.conversation) continue;
    const pinned = Boolean(article._pinned);
    box.append(button(pinned ? "Pinned" : "Pin", {
      name: "Pin", pressed: pinned, className: "action pin",
      onClick: () => pin(article, !pinned),
    }));
    if (running) continue;
    if (article === lastReply) {
      if (article.dataset.status === "complete") {
        box.append(button("Regenerate", {onClick: () => startRun("regenerate")}));
      } else {
        box.append(button("Continue", {className: "action strong", onClick: () => startRun("continue")}));
        box.append(button("Retry", {onClick: () => startRun("regenerate")}));
      }
    }
    if (article === lastUser) {
      box.append(button("Edit", {onClick: () => beginEdit(article)}));
      box.append(button("Undo", {onClick: () => undo()}));
    }
  }
}

async function copyText(text, message) {
  try {
    await navigator.clipboard.writeText(text);
    announce(message);
  } catch {
    toast("Copying needs clipboard access (a secure context): select the text instead.");
  }
}

// Copy buttons inside code blocks (server HTML carries no handlers).
els.messages.addEventListener("click", (event) => {
  const target = event.target.closest?.(".copy-code");
  if (!target) return;
  const code = target.closest(".code-block")?.querySelector("pre code");
  if (code) copyText(code.textContent, "Code copied");
});

// -- the conversation list ----------------------------------------------------------------------

let searchTimer = 0;

async function loadList() {
  const query = els.search.value.trim();
  try {
    const data = await api("GET", `/api/conversations?limit=100${query ? `&q=${encodeURIComponent(query)}` : ""}`);
    renderList(data.conversations, query);
  } catch (error) {
    toast(`Could not load the conversations: ${error.message}`);
  }
}

function renderList(rows, query) {
  els.list.replaceChildren();
  for (const row of rows) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/c/${encodeURIComponent(row.id)}`;
    link.className = "conversation-link";
    if (state.conversation?.id === row.id) link.setAttribute("aria-current", "page");
    const title = document.createElement("span");
    title.className = "conversation-title";
    title.textContent = row.title || "Untitled";
    const sub = document.createElement("span");
    sub.className = "conversation-sub";
    sub.textContent = row.snippet ? row.snippet : relativeTime(row.updated_at);
    if (row.running) {
      const dot = document.createElement("span");
      dot.className = "running-dot";
      dot.setAttribute("aria-label", "reply running");
      title.prepend(dot);
    }
    link.append(title, sub);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openConversation(row.id, {push: true});
      closeSidebar();
    });
    li.append(link);
    els.list.append(li);
  }
  els.listEmpty.hidden = rows.length > 0;
  els.listEmpty.textContent = query ? "No conversation matches." : "No conversations yet.";
}

els.search.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(loadList, 200);
});

// -- settings -----------------------------------------------------------------------------------

function currentSettings() {
  const c = state.conversation;
  if (c) return {model: c.model, persona: c.persona, system: c.system, thinking: c.thinking};
  return state.draft;
}

function renderSettings() {
  const s = currentSettings();
  els.model.replaceChildren(...state.models.map((m) => new Option(m.display_name || m.id, m.id)));
  if (s.model && !state.models.some((m) => m.id === s.model)) els.model.append(new Option(s.model, s.model));
  els.model.value = s.model ?? state.config?.model ?? "";
  els.model.disabled = Boolean(state.config?.local) && state.models.length <= 1;
  const personas = Object.keys(state.config?.personas ?? {});
  els.persona.replaceChildren(new Option("Custom", ""), ...personas.map((p) => new Option(p, p)));
  els.persona.value = s.persona ?? "";
  els.persona.disabled = personas.length === 0;
  els.thinking.checked = Boolean(s.thinking);
  const hasConversation = Boolean(state.conversation);
  els.rename.disabled = !hasConversation;
  els.del.disabled = !hasConversation;
  els.exportMenu.classList.toggle("disabled", !hasConversation);
  if (hasConversation) {
    const id = encodeURIComponent(state.conversation.id);
    els.exportMd.href = `/api/conversations/${id}/export?format=md`;
    els.exportJson.href = `/api/conversations/${id}/export?format=json`;
  }
  els.title.textContent = state.conversation?.title || "New chat";
  document.title = state.conversation ? `${state.conversation.title} · streamchat` : "streamchat";
}

async function changeSetting(changes) {
  if (!state.conversation) {
    Object.assign(state.draft, changes);
    if ("persona" in changes && changes.persona) state.draft.system = state.config.personas[changes.persona];
    renderSettings();
    renderStatus();
    return;
  }
  try {
    state.conversation = await api("PATCH", `/api/conversations/${encodeURIComponent(state.conversation.id)}`, changes);
    renderSettings();
    renderStatus();
  } catch (error) {
    toast(error.message);
    renderSettings();
  }
}

els.model.addEventListener("change", () => changeSetting({model: els.model.value}));
els.thinking.addEventListener("change", () => changeSetting({thinking: els.thinking.checked}));
els.persona.addEventListener("change", () => changeSetting({persona: els.persona.value || null}));
els.editSystem.addEventListener("click", async () => {
  const text = await askText("System prompt (the persona for this conversation)", currentSettings().system ?? "", {multiline: true});
  if (text !== null) await changeSetting({system: text, persona: null});
});

els.rename.addEventListener("click", async () => {
  if (!state.conversation) return;
  const title = await askText("Rename conversation", state.conversation.title);
  if (title === null || !title.trim()) return;
  await changeSetting({title: title.trim()});
  loadList();
});

els.del.addEventListener("click", async () => {
  const c = state.conversation;
  if (!c) return;
  if (!(await confirmAction(`Delete “${c.title}”? This cannot be undone.`))) return;
  try {
    await api("DELETE", `/api/conversations/${encodeURIComponent(c.id)}`);
    announce("Conversation deleted");
    newChat();
    loadList();
  } catch (error) {
    toast(error.message);
  }
});

// -- status and usage ---------------------------------------------------------------------------

function renderStatus() {
  const s = currentSettings();
  const model = s.model ?? state.config?.model ?? "";
  const usage = state.usage;
  const live = state.run?.usage;
  const budget = state.config?.max_context_tokens;
  const context = live?.input_tokens || usage?.context_tokens || state.window?.tokens;
  const parts = [model];
  parts.push(`context ${context ? compact(context) : "–"}${budget ? ` / ${compact(budget)}` : ""}`);
  let cost = usage?.totals?.cost ?? 0;
  if (live && cost != null) cost = live.cost == null ? null : cost + live.cost;
  parts.push(`cost ${formatCost(state.config?.local ? 0 : cost)}${state.config?.local ? " (local)" : ""}`);
  if (s.thinking) parts.push("thinking on");
  if (state.run) parts.push(`streaming · out ${live?.output_tokens ? compact(live.output_tokens) : `~${Math.ceil((state.run.chars ?? 0) / 4)}`}`);
  els.status.textContent = parts.join(" · ");
}

function renderUsage() {
  const usage = state.usage;
  const totals = usage?.totals ?? {input_tokens: 0, output_tokens: 0, cost: 0, turns: 0};
  const rows = [
    ["Replies", String(totals.turns ?? 0)],
    ["Input tokens", compact(totals.input_tokens)],
    ["Output tokens", compact(totals.output_tokens)],
    ["Cost", state.config?.local ? "$0.00" : formatCost(totals.cost)],
  ];
  els.totals.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
  drawUsageChart(els.chart, usage?.series ?? [], usage?.budget ?? state.config?.max_context_tokens);
}

// -- opening conversations ----------------------------------------------------------------------

function showWelcome() {
  els.welcome.hidden = articles().length > 0;
  els.welcomeModel.textContent = state.config ? `${currentSettings().model ?? state.config.model}${state.config.local ? " · built-in local model" : ""}` : "";
}

function stopFollowingRun() {
  state.run?.handle?.close();
  state.run = null;
  setRunning(false);
}

function newChat({push = true} = {}) {
  stopFollowingRun();
  state.conversation = null;
  state.usage = null;
  state.window = null;
  state.draft = {model: state.config?.model ?? null, persona: state.config?.persona ?? null,
    system: state.config?.system ?? "", thinking: Boolean(state.config?.thinking)};
  endEdit();
  els.messages.replaceChildren();
  if (push && location.pathname !== "/") history.pushState({}, "", "/");
  renderSettings();
  renderUsage();
  renderStatus();
  showWelcome();
  loadList();
  els.message.focus();
}

async function openConversation(id, {push = false} = {}) {
  stopFollowingRun();
  endEdit();
  let data;
  try {
    data = await api("GET", `/api/conversations/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status === 404) {
      toast("That conversation no longer exists.");
      newChat();
      return;
    }
    toast(error.message);
    return;
  }
  if (push) history.pushState({}, "", `/c/${encodeURIComponent(id)}`);
  state.conversation = data.conversation;
  state.usage = data.usage;
  state.window = data.window;
  els.messages.replaceChildren(...data.articles.map((a) => {
    const article = makeArticle(a);
    applyMeta(article, a);
    return article;
  }));
  state.following = true;
  renderSettings();
  renderUsage();
  renderStatus();
  showWelcome();
  if (data.run && goneRuns.has(data.run.id)) {
    // Its events can no longer be had (the log was trimmed): show it from the store when it ends.
    toast("This reply is still running; it will show here when it finishes.");
    setTimeout(() => { if (state.conversation?.id === id && !state.run) openConversation(id); }, 2000);
  } else if (data.run) {
    attachRun(data.run.id, data.run.position, {after: 0, kind: data.run.kind});
  }
  refreshActions();
  loadList();
  requestAnimationFrame(() => { els.transcript.scrollTop = els.transcript.scrollHeight; });
}

async function refreshConversation() {
  // After a reply: usage, window and message metadata; the articles' HTML stays as streamed.
  if (!state.conversation) return;
  let data;
  try {
    data = await api("GET", `/api/conversations/${encodeURIComponent(state.conversation.id)}`);
  } catch {
    return;
  }
  if (state.run) return; // a new reply started meanwhile: its end refreshes again
  if (data.run) { // started elsewhere (another tab, a terminal): show it live
    await openConversation(state.conversation.id);
    return;
  }
  state.conversation = data.conversation;
  state.usage = data.usage;
  state.window = data.window;
  const byIndex = new Map(articles().map((a) => [a.dataset.index, a]));
  const fits = data.articles.length === byIndex.size && data.articles.every((a) => byIndex.has(String(a.index)));
  if (fits) {
    for (const a of data.articles) applyMeta(byIndex.get(String(a.index)), a);
  } else {
    els.messages.replaceChildren(...data.articles.map((a) => {
      const article = makeArticle(a);
      applyMeta(article, a);
      return article;
    }));
  }
  renderSettings();
  renderUsage();
  renderStatus();
  refreshActions();
}

// -- runs ---------------------------------------------------------------------------------------

function setRunning(running) {
  els.send.hidden = running;
  els.stop.hidden = !running;
  els.composer.classList.toggle("running", running);
}

function attachRun(runId, position, {after = 0, kind = "send", article = null} = {}) {
  let target = article;
  if (!target) {
    target = articles().find((a) => a.dataset.role === "assistant" && a.dataset.index === String(position)) ?? null;
  }
  if (!target) {
    target = makeArticle({role: "assistant", index: position, status: "streaming"});
    els.messages.append(target);
  }
  target.dataset.status = "streaming";
  target.querySelector(".notice").hidden = true;
  target.querySelector(".content").replaceChildren();
  const view = new ReplyView(target.querySelector(".content"));
  const run = {id: runId, article: target, view, handle: null, chars: 0, usage: null};
  state.run = run;
  setRunning(true);
  showWelcome();
  refreshActions();
  renderStatus();
  announce(kind === "continue" ? "Reply continuing" : "Reply started");
  run.handle = followRun(`/api/runs/${encodeURIComponent(runId)}/events`, view, {
    after,
    onEvent: (type, data) => onRunEvent(run, type, data),
    onEnd: (data) => onRunEnd(run, data),
    onGone: () => onRunGone(run),
  });
  follow();
}

function onRunEvent(run, type, data) {
  if (state.run !== run) return;
  if (data.chars !== undefined) run.chars = data.chars;
  if (type === "usage") run.usage = data;
  if (type === "tool_ask") showToolQuestion(run, data);
  if (type === "tool_answer") run.article.querySelector(`.tool-ask[data-tool-id="${CSS.escape(data.id)}"]`)?.remove();
  if (type === "window" && data.dropped) announce(`${data.dropped} older messages left out of the context window`);
  if (type === "part" && data.kind === "thinking") run.article.querySelector(".thinking.live summary")?.replaceChildren("Thinking…");
  if (type === "part_end") {
    for (const summary of run.article.querySelectorAll(".thinking:not(.live) summary")) summary.textContent = "Thinking";
  }
  const usage = run.usage ? {...run.usage, estimate: Math.ceil(run.chars / 4)} : {input_tokens: 0, output_tokens: 0, estimate: Math.ceil(run.chars / 4)};
  setUsage(run.article, usage, run.usage?.cost, true);
  renderStatus();
  follow();
}

function onRunEnd(run, data) {
  if (state.run !== run) return;
  run.view.settle();
  setStatus(run.article, data.status, data.error);
  setUsage(run.article, data.usage, data.cost);
  state.run = null;
  setRunning(false);
  const said = {complete: "Reply finished", interrupted: "Reply stopped", error: `Reply failed${data.error ? `: ${data.error}` : ""}`};
  announce(said[data.status] ?? "Reply ended");
  refreshActions();
  renderStatus();
  follow();
  refreshConversation();
  loadList();
}

const goneRuns = new Set();

function onRunGone(run) {
  if (state.run !== run) return;
  goneRuns.add(run.id);
  // The log no longer holds what we need: the store has the reply.
  state.run = null;
  setRunning(false);
  if (state.conversation) openConversation(state.conversation.id);
}

function showToolQuestion(run, {id, name}) {
  const tool = run.view.toolElement(id) ?? run.article.querySelector(".tool:last-of-type");
  const box = document.createElement("div");
  box.className = "tool-ask";
  box.dataset.toolId = id;
  const question = document.createElement("span");
  question.textContent = `Run the tool “${name}”?`;
  const answer = async (allow) => {
    box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      await api("POST", `/api/runs/${encodeURIComponent(run.id)}/tools/${encodeURIComponent(id)}`, {allow});
    } catch (error) {
      toast(error.message);
    }
  };
  const allow = button("Allow", {className: "button primary small", onClick: () => answer(true)});
  const deny = button("Deny", {className: "button small", onClick: () => answer(false)});
  box.append(question, allow, deny);
  (tool ?? run.article.querySelector(".content")).append(box);
  announce(`The model wants to run ${name}: Allow or Deny`);
  allow.focus({preventScroll: true});
}

async function startRun(kind, text) {
  if (state.run) return;
  const c = state.conversation;
  try {
    let started;
    if (kind === "send" && !c) {
      const s = state.draft;
      started = await api("POST", "/api/conversations", {text, model: s.model, persona: s.persona, system: s.system, thinking: s.thinking});
      state.conversation = {id: started.conversation_id, title: text.slice(0, 80), model: s.model, persona: s.persona, system: s.system, thinking: s.thinking};
      history.pushState({}, "", `/c/${encodeURIComponent(started.conversation_id)}`);
    } else {
      const path = {send: "messages", regenerate: "regenerate", continue: "continue", edit: "edit"}[kind];
      const body = kind === "send" || kind === "edit" ? {text} : {};
      started = await api("POST", `/api/conversations/${encodeURIComponent(c.id)}/${path}`, body);
    }
    if (kind === "send" || kind === "edit") {
      if (kind === "edit") removeFrom(started.position - 1);
      const user = makeArticle({role: "user", index: started.position - 1, html: "", text});
      const p = document.createElement("p");
      p.className = "plain";
      p.textContent = text;
      user.querySelector(".content").append(p);
      els.messages.append(user);
    } else if (kind === "regenerate") {
      removeFrom(started.position);
    }
    state.following = true;
    attachRun(started.run_id, started.position, {kind});
    if (kind === "send" && !c) renderSettings();
    loadList();
    return true;
  } catch (error) {
    toast(error.message);
    announce(`Could not send: ${error.message}`);
    return false;
  }
}

function removeFrom(index) {
  for (const article of articles()) {
    if (Number(article.dataset.index) >= index) article.remove();
  }
}

async function stopRun() {
  const run = state.run;
  if (!run) return;
  els.stop.disabled = true;
  try {
    await api("POST", `/api/runs/${encodeURIComponent(run.id)}/stop`);
  } catch (error) {
    toast(error.message);
  } finally {
    els.stop.disabled = false;
  }
}

async function pin(article, pinned) {
  try {
    await api("POST", `/api/conversations/${encodeURIComponent(state.conversation.id)}/pin`, {index: Number(article.dataset.index), pinned});
    article._pinned = pinned;
    announce(pinned ? "Pinned to the context window" : "Unpinned");
    refreshConversation();
  } catch (error) {
    toast(error.message);
  }
}

async function undo() {
  try {
    await api("POST", `/api/conversations/${encodeURIComponent(state.conversation.id)}/undo`);
    announce("Last exchange undone");
    await openConversation(state.conversation.id);
  } catch (error) {
    toast(error.message);
  }
}

function beginEdit(article) {
  state.editing = true;
  els.editingNote.hidden = false;
  els.message.value = articleText(article);
  autoGrow();
  els.message.focus();
}

function endEdit() {
  state.editing = false;
  els.editingNote.hidden = true;
}

els.cancelEdit.addEventListener("click", () => {
  endEdit();
  els.message.value = "";
  autoGrow();
  els.message.focus();
});

// -- the message box ----------------------------------------------------------------------------

function autoGrow() {
  els.message.style.height = "auto";
  els.message.style.height = `${Math.min(els.message.scrollHeight, 240)}px`;
}

async function submit() {
  const text = els.message.value;
  if (!text.trim()) {
    announce("The message is empty");
    return;
  }
  if (state.run) return;
  const kind = state.editing ? "edit" : "send";
  const ok = await startRun(kind, text);
  if (ok) {
    els.message.value = "";
    endEdit();
    autoGrow();
  }
}

els.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

els.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
els.message.addEventListener("input", autoGrow);

els.stop.addEventListener("click", stopRun);

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.run && !document.querySelector("dialog[open]")) {
    event.preventDefault();
    stopRun();
  }
});

els.newChat.addEventListener("click", () => { newChat(); closeSidebar(); });

// -- the sidebar at phone width -----------------------------------------------------------------

function closeSidebar() {
  els.app.classList.remove("sidebar-open");
  els.sidebarToggle.setAttribute("aria-expanded", "false");
  els.scrim.hidden = true;
}

els.sidebarToggle.addEventListener("click", () => {
  const open = !els.app.classList.contains("sidebar-open");
  els.app.classList.toggle("sidebar-open", open);
  els.sidebarToggle.setAttribute("aria-expanded", String(open));
  els.scrim.hidden = !open;
  if (open) els.search.focus();
});
els.scrim.addEventListener("click", closeSidebar);

// -- start --------------------------------------------------------------------------------------

function route() {
  const match = location.pathname.match(/^\/c\/([^/]+)$/);
  if (match) openConversation(decodeURIComponent(match[1]));
  else newChat({push: false});
}

window.addEventListener("popstate", route);

document.addEventListener("visibilitychange", () => {
  // Back to this tab: a reply another tab or the terminal started shows up.
  if (document.visibilityState === "visible" && state.conversation && !state.run) refreshConversation();
});

async function start() {
  try {
    state.config = await api("GET", "/api/config");
  } catch (error) {
    toast(`Could not reach the server: ${error.message}`);
    return;
  }
  state.models = [{id: state.config.model, display_name: state.config.model}];
  route();
  try {
    state.models = (await api("GET", "/api/models")).models;
    renderSettings();
  } catch {
    // keep the configured model
  }
}

start();
