// The open conversation: a new chat, opening and refreshing a saved one, sending (and regenerating,
// continuing, editing) a message, pin, undo, rename and delete. Everything the page shows of it is
// drawn by the modules it imports; this one decides what happens.

import {api} from "./api.js";
import {endEdit, focusMessage} from "./composer.js";
import {attachRun, isGone, stopFollowingRun} from "./runs.js";
import {renderSettings, changeSetting} from "./settings.js";
import {loadList} from "./sidebar.js";
import {state} from "./state.js";
import {
  appendUserMessage, applyMeta, articles, refreshActions, removeFrom, scrollToEnd, showArticles, showWelcome,
} from "./transcript.js";
import {$, announce, askText, confirmAction, toast} from "./ui.js";
import {renderStatus, renderUsage} from "./usage.js";

const els = {rename: $("rename"), del: $("delete")};

function followReply(runId, position, kind) {
  attachRun(runId, position, {
    kind,
    onEnd: () => { refreshConversation(); loadList(); },
    // The log no longer holds what we need: the store has the reply.
    onGone: () => { if (state.conversation) openConversation(state.conversation.id); },
  });
}

export function newChat({push = true} = {}) {
  stopFollowingRun();
  state.conversation = null;
  state.usage = null;
  state.window = null;
  state.draft = {model: state.config?.model ?? null, persona: state.config?.persona ?? null,
    system: state.config?.system ?? "", thinking: Boolean(state.config?.thinking)};
  endEdit();
  showArticles([]);
  if (push && location.pathname !== "/") history.pushState({}, "", "/");
  renderSettings();
  renderUsage();
  renderStatus();
  showWelcome();
  loadList();
  focusMessage();
}

export async function openConversation(id, {push = false} = {}) {
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
  showArticles(data.articles);
  state.following = true;
  renderSettings();
  renderUsage();
  renderStatus();
  showWelcome();
  if (data.run && isGone(data.run.id)) {
    // Its events can no longer be had (the log was trimmed): show it from the store when it ends.
    toast("This reply is still running; it will show here when it finishes.");
    setTimeout(() => { if (state.conversation?.id === id && !state.run) openConversation(id); }, 2000);
  } else if (data.run) {
    followReply(data.run.id, data.run.position, data.run.kind);
  }
  refreshActions();
  loadList();
  scrollToEnd();
}

export async function refreshConversation() {
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
    showArticles(data.articles);
  }
  renderSettings();
  renderUsage();
  renderStatus();
  refreshActions();
}

/** Send (the first message of a new chat too), regenerate, continue or edit; true once it started. */
export async function startRun(kind, text) {
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
      appendUserMessage(started.position - 1, text);
    } else if (kind === "regenerate") {
      removeFrom(started.position);
    }
    state.following = true;
    followReply(started.run_id, started.position, kind);
    if (kind === "send" && !c) renderSettings();
    loadList();
    return true;
  } catch (error) {
    toast(error.message);
    announce(`Could not send: ${error.message}`);
    return false;
  }
}

export async function pin(article, pinned) {
  try {
    await api("POST", `/api/conversations/${encodeURIComponent(state.conversation.id)}/pin`, {index: Number(article.dataset.index), pinned});
    article._pinned = pinned;
    announce(pinned ? "Pinned to the context window" : "Unpinned");
    refreshConversation();
  } catch (error) {
    toast(error.message);
  }
}

export async function undo() {
  try {
    await api("POST", `/api/conversations/${encodeURIComponent(state.conversation.id)}/undo`);
    announce("Last exchange undone");
    await openConversation(state.conversation.id);
  } catch (error) {
    toast(error.message);
  }
}

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
