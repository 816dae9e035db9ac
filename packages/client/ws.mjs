import { WebSocket } from 'undici';

const ws = new WebSocket('ws://127.0.0.1:23790/v3/watch');
const b = (s) => Buffer.from(s).toString('base64');
ws.onopen = () => {
  console.log('open', ws.protocol, ws.extensions);
  ws.send(
    JSON.stringify({
      create_request: { key: b('w/'), range_end: b('w0'), watch_id: 5, prev_kv: true },
    }),
  );
  ws.send(JSON.stringify({ create_request: { key: b('w/a'), watch_id: 6, start_revision: '1' } }));
  setTimeout(async () => {
    await fetch('http://127.0.0.1:23790/v3/kv/put', {
      method: 'POST',
      body: JSON.stringify({ key: b('w/a'), value: b('1') }),
    });
    ws.send(JSON.stringify({ progress_request: {} }));
    ws.send(JSON.stringify({ cancel_request: { watch_id: 6 } }));
    ws.send(JSON.stringify({ create_request: { key: b('w/a'), watch_id: 5 } }));
    ws.send('garbage');
  }, 300);
  setTimeout(() => ws.close(), 1500);
};
ws.onmessage = (e) => console.log('msg', typeof e.data, String(e.data).slice(0, 400));
ws.onclose = (e) => console.log('close', e.code, e.reason);
ws.onerror = (e) => console.log('error', e.message);
