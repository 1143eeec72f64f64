// The official TypeScript SDK against a streamchat server, configured only by ANTHROPIC_BASE_URL
// and ANTHROPIC_API_KEY. Prints one JSON report for test_server_typescript.py to check.
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ maxRetries: 0 });
const tools = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
const request = { model: 'any-model', max_tokens: 4096, messages: [{ role: 'user', content: 'Hi' }], tools };

const stream = client.messages.stream(request);
const texts = [];
const kinds = [];
let snapshotSeen = false;
stream.on('text', (delta) => texts.push(delta));
for await (const event of stream) {
  kinds.push(event.type === 'content_block_delta' ? event.delta.type : event.type);
  if (event.type === 'content_block_delta' && stream.currentMessage) snapshotSeen = true;
}
const final = await stream.finalMessage();

const raw = [];
for await (const event of await client.messages.create({ ...request, stream: true })) raw.push(event.type);
const created = await client.messages.create(request);
const counted = await client.messages.countTokens({ model: 'any', messages: request.messages });
const models = [];
for await (const model of client.models.list()) models.push(model.id);

let notFound = null;
try {
  await client.models.retrieve('no-such-model');
} catch (error) {
  notFound = { name: error.constructor.name, status: error.status, requestID: error.requestID,
               header: error.headers?.get?.('request-id') ?? null, type: error.error?.error?.type ?? null };
}

console.log(JSON.stringify({ texts, kinds, snapshotSeen, final, raw, created, counted, models, notFound }));
