// Starts the web app. A file of its own (not an inline script), so the server's
// Content-Security-Policy can allow scripts from this origin only. Its neighbours are named
// relative to it, so the app works under any base path (`server.base_path`).
import init from "./seal_frontend.js";
init({ module_or_path: new URL("seal_frontend_bg.wasm", import.meta.url) });
