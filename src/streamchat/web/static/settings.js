// The conversation's header: its title, the settings bar (model, persona, system prompt, thinking)
// and the export links. A new chat keeps its settings in `state.draft` until its first message.

import {api} from "./api.js";
import {state, currentSettings} from "./state.js";
import {$, askText, toast} from "./ui.js";
import {renderStatus} from "./usage.js";

const els = {
  title: $("title"), rename: $("rename"), del: $("delete"), exportMenu: $("export-menu"),
  exportMd: $("export-md"), exportJson: $("export-json"), model: $("model"), persona: $("persona"),
  editSystem: $("edit-system"), thinking: $("thinking"),
};

export function renderSettings() {
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

/** Change the open conversation's settings (or title) on the server, or the new chat's draft. */
export async function changeSetting(changes) {
  if (!state.conversation) {
    Object.assign(state.draft, changes);
    if ("persona" in changes && changes.persona) state.draft.system = state.config.personas[changes.persona];
    renderSettings();
    renderStatus();
    return;
  }
  // Shown at once (a dialog opened before the server answers must show the new text), then the
  // server's row; on a failure the row as it was.
  const before = state.conversation;
  state.conversation = {...before, ...changes};
  if ("persona" in changes && changes.persona) state.conversation.system = state.config.personas[changes.persona];
  renderSettings();
  renderStatus();
  try {
    const saved = await api("PATCH", `/api/conversations/${encodeURIComponent(before.id)}`, changes);
    if (state.conversation?.id === before.id) state.conversation = saved;
  } catch (error) {
    toast(error.message);
    if (state.conversation?.id === before.id) state.conversation = before;
  }
  renderSettings();
  renderStatus();
}

els.model.addEventListener("change", () => changeSetting({model: els.model.value}));
els.thinking.addEventListener("change", () => changeSetting({thinking: els.thinking.checked}));
els.persona.addEventListener("change", () => changeSetting({persona: els.persona.value || null}));
els.editSystem.addEventListener("click", async () => {
  const text = await askText("System prompt (the persona for this conversation)", currentSettings().system ?? "", {multiline: true});
  if (text !== null) await changeSetting({system: text, persona: null});
});
