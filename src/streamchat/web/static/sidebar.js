// The conversation list: saved conversations (or search hits) with their running replies, and the
// sidebar as a drawer at phone width. Opening one is the conversation's business: `bindSidebar`.

import {api} from "./api.js";
import {state} from "./state.js";
import {$, relativeTime, toast} from "./ui.js";

const els = {
  app: $("app"), scrim: $("scrim"), sidebarToggle: $("sidebar-toggle"), newChat: $("new-chat"), search: $("search"),
  list: $("conversation-list"), listEmpty: $("list-empty"),
};

// What picking does: {open(id), newChat()}.
let handlers = null;

/** Give the sidebar what opening a conversation and starting a new chat do (once, at start). */
export function bindSidebar(actions) {
  handlers = actions;
}

let searchTimer = 0;

export async function loadList() {
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
      handlers.open(row.id);
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

els.newChat.addEventListener("click", () => { handlers.newChat(); closeSidebar(); });

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
