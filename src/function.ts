// The entry point for Cloud Functions / Cloud Run with the functions framework's own launcher
// (`--target=sessionkeeper`): the app opens on the first request and is reused after.
import { http } from '@google-cloud/functions-framework';
import { openApp, type App } from './app.js';
import { describeError } from './errors.js';
import { createHandler, FUNCTION_NAME } from './http.js';

let opening: Promise<ReturnType<typeof createHandler>> | undefined;

function handler(): Promise<ReturnType<typeof createHandler>> {
  opening ??= openApp({ command: 'cloud function' }).then(
    (app: App) => createHandler(app),
    (err: unknown) => {
      opening = undefined; // try again on the next request
      throw err;
    },
  );
  return opening;
}

http(FUNCTION_NAME, async (req, res) => {
  try {
    const h = await handler();
    await h(req, res);
  } catch (err) {
    console.error(describeError(err));
    res.status(503).json({ error: 'starting up failed; see the logs' });
  }
});
