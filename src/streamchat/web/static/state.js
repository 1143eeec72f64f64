// What the page knows: the server's config and models, the open conversation (or a new chat's
// draft settings), its usage and context window, and the reply being followed.

export const state = {
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

/** The open conversation's settings, or the new chat's. */
export function currentSettings() {
  const c = state.conversation;
  if (c) return {model: c.model, persona: c.persona, system: c.system, thinking: c.thinking};
  return state.draft;
}
