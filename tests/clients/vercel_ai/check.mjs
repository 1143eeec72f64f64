// The Vercel AI SDK's Anthropic provider against a streamchat server, configured only by
// ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY. Prints one JSON report for test_client_vercel_ai.py.
import { createAnthropic } from '@ai-sdk/anthropic';
import { streamText } from 'ai';

const anthropic = createAnthropic({
  baseURL: `${process.env.ANTHROPIC_BASE_URL}/v1`,
  apiKey: process.env.ANTHROPIC_API_KEY,
});
const errors = [];
const result = streamText({
  model: anthropic('claude-sonnet-4-5'),
  system: 'You are terse.',
  prompt: process.argv[2] ?? 'Say hello.',
  maxRetries: 0,
  onError: ({ error }) => errors.push(String(error?.message ?? error)),
});
const deltas = [];
for await (const delta of result.textStream) deltas.push(delta);
const report = {
  deltas,
  text: await result.text,
  finishReason: await result.finishReason,
  usage: await result.usage,
  errors,
};
console.log(JSON.stringify(report));
