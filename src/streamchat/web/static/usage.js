// The status line (model, context used / budget, cost, streaming) and the usage panel (totals and
// the per-reply chart) of the open conversation.

import {compact, drawUsageChart} from "./chart.js";
import {state, currentSettings} from "./state.js";
import {$, formatCost} from "./ui.js";

const els = {status: $("status"), totals: $("totals"), chart: $("usage-chart")};

export function renderStatus() {
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

export function renderUsage() {
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
