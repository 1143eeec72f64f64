// The web chat page: its entry module. It joins the parts (each module below draws one part of the
// page and wires its own controls) and routes /c/ID to a conversation.
// All message HTML comes from the server, sanitized; the page only places it.
//
//   conversation.js  the open conversation: new, open, send/regenerate/continue/edit, pin, undo, delete
//   runs.js          following a reply on the server (stream.js), tool questions, Stop
//   transcript.js    the message articles and their actions, following the reply, the welcome
//   composer.js      the message box        sidebar.js   the conversation list
//   settings.js      the header and settings bar        usage.js   the status line and usage panel
//   state.js, api.js, ui.js, chart.js: what the page knows, its API client, small shared pieces

import {api} from "./api.js";
import {beginEdit, bindComposer, focusMessage} from "./composer.js";
import {newChat, openConversation, pin, refreshConversation, startRun, undo} from "./conversation.js";
import {stopRun} from "./runs.js";
import {renderSettings} from "./settings.js";
import {bindSidebar} from "./sidebar.js";
import {state} from "./state.js";
import {bindTranscript} from "./transcript.js";
import {toast} from "./ui.js";

bindTranscript({run: (kind) => startRun(kind), pin, edit: beginEdit, undo: () => undo(), focusMessage});
bindComposer({send: startRun, stop: stopRun});
bindSidebar({open: (id) => openConversation(id, {push: true}), newChat: () => newChat()});

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
