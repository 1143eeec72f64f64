// The transcript: one <article class="message"> per message (data-role, data-status, data-index, its
// server HTML in .content), each with its actions; following the reply as it grows; the welcome.
// The actions act on the conversation, which lives above this module: `bindTranscript` hands them in.

import {compact} from "./chart.js";
import {state, currentSettings} from "./state.js";
import {$, button, copyText, formatCost} from "./ui.js";

const els = {
  transcript: $("transcript"), messages: $("messages"), jump: $("jump"), welcome: $("welcome"),
  welcomeModel: $("welcome-model"),
};

// What the message actions do: {run(kind), pin(article, pinned), edit(article), undo(), focusMessage()}.
let handlers = null;

/** Give the transcript what its buttons do (once, at start). */
export function bindTranscript(actions) {
  handlers = actions;
}

// -- following the reply ------------------------------------------------------------------------

function atBottom() {
  const t = els.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 48;
}

/** Keep the newest text in view while following; else offer the jump button during a reply. */
export function follow() {
  if (state.following) {
    els.transcript.scrollTop = els.transcript.scrollHeight;
    els.jump.hidden = true;
  } else if (state.run) {
    els.jump.hidden = false;
  }
}

export function scrollToEnd() {
  requestAnimationFrame(() => { els.transcript.scrollTop = els.transcript.scrollHeight; });
}

els.transcript.addEventListener("scroll", () => {
  state.following = atBottom();
  if (state.following) els.jump.hidden = true;
}, {passive: true});

els.jump.addEventListener("click", () => {
  state.following = true;
  follow();
  handlers.focusMessage();
});

// -- articles -----------------------------------------------------------------------------------

const ROLE_LABEL = {user: "You", assistant: "Assistant", system: "System"};

export function makeArticle({role, index, status = "complete", html = "", text = ""}) {
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

export function articleText(article) {
  if (article._text) return article._text;
  return article.querySelector(".content").innerText;
}

export function setUsage(article, usage, cost, live = false) {
  const span = article.querySelector(".usage");
  if (!usage) { span.textContent = ""; return; }
  const out = live && !usage.output_tokens ? `~${usage.estimate ?? 0}` : compact(usage.output_tokens);
  span.textContent = `in ${compact(usage.input_tokens)} · out ${out}` + (cost != null || !live ? ` · ${formatCost(cost)}` : "");
}

export function setStatus(article, status, error) {
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

/** Update an article from the server's view of its message (index, window, pin, status, usage). */
export function applyMeta(article, a) {
  article.dataset.index = String(a.index);
  article.dataset.last = String(a.last);
  article._text = a.text;
  article._pinned = Boolean(a.pinned);
  article.classList.toggle("outside-window", !a.in_window);
  article.querySelector(".window-note").hidden = Boolean(a.in_window);
  setStatus(article, a.status, null);
  if (a.role === "assistant") setUsage(article, a.usage, a.cost);
}

export function articles() {
  return [...els.messages.querySelectorAll("article.message")];
}

/** Replace the transcript with the server's articles. */
export function showArticles(list) {
  els.messages.replaceChildren(...list.map((a) => {
    const article = makeArticle(a);
    applyMeta(article, a);
    return article;
  }));
}

export function appendArticle(article) {
  els.messages.append(article);
}

/** The user's message as typed, shown at once (the server's HTML of it comes with the next load). */
export function appendUserMessage(index, text) {
  const user = makeArticle({role: "user", index, html: "", text});
  const p = document.createElement("p");
  p.className = "plain";
  p.textContent = text;
  user.querySelector(".content").append(p);
  els.messages.append(user);
}

/** Remove the messages from `index` on. */
export function removeFrom(index) {
  for (const article of articles()) {
    if (Number(article.dataset.index) >= index) article.remove();
  }
}

/** Redraw every message's buttons: Copy always; Pin, Regenerate/Continue/Retry, Edit, Undo when they apply. */
export function refreshActions() {
  const all = articles();
  const running = Boolean(state.run);
  const lastUser = [...all].reverse().find((a) => a.dataset.role === "user");
  const lastReply = all.at(-1)?.dataset.role === "assistant" ? all.at(-1) : null;
  // The buttons are rebuilt; a keyboard user's focus on one of them must survive that.
  const focused = document.activeElement?.closest?.(".actions button");
  const focusedAt = focused ? {index: focused.closest("article")?.dataset.index, action: focused.dataset.action} : null;
  for (const article of all) {
    const box = article.querySelector(".actions");
    const add = (label, options) => {
      const b = button(label, options);
      b.dataset.action = options?.name ?? label;
      box.append(b);
    };
    box.replaceChildren();
    const streaming = article.dataset.status === "streaming";
    add("Copy", {onClick: () => copyText(articleText(article), "Message copied")});
    if (streaming || !state.conversation) continue;
    const pinned = Boolean(article._pinned);
    add(pinned ? "Pinned" : "Pin", {
      name: "Pin", pressed: pinned, className: "action pin",
      onClick: () => handlers.pin(article, !pinned),
    });
    if (running) continue;
    if (article === lastReply) {
      if (article.dataset.status === "complete") {
        add("Regenerate", {onClick: () => handlers.run("regenerate")});
      } else {
        add("Continue", {className: "action strong", onClick: () => handlers.run("continue")});
        add("Retry", {onClick: () => handlers.run("regenerate")});
      }
    }
    if (article === lastUser) {
      add("Edit", {onClick: () => handlers.edit(article)});
      add("Undo", {onClick: () => handlers.undo()});
    }
  }
  if (focusedAt && !document.activeElement?.closest?.(".actions button")) {
    const article = all.find((a) => a.dataset.index === focusedAt.index);
    article?.querySelector(`.actions button[data-action="${CSS.escape(focusedAt.action ?? "")}"]`)?.focus({preventScroll: true});
  }
}

// Copy buttons inside code blocks (server HTML carries no handlers).
els.messages.addEventListener("click", (event) => {
  const target = event.target.closest?.(".copy-code");
  if (!target) return;
  const code = target.closest(".code-block")?.querySelector("pre code");
  if (code) copyText(code.textContent, "Code copied");
});

// -- the welcome --------------------------------------------------------------------------------

export function showWelcome() {
  els.welcome.hidden = articles().length > 0;
  els.welcomeModel.textContent = state.config ? `${currentSettings().model ?? state.config.model}${state.config.local ? " · built-in local model" : ""}` : "";
}
