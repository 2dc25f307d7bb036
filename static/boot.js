// Starts the web app. A file of its own (not an inline script), so the server's
// Content-Security-Policy can allow scripts from this origin only.
import init from "/seal_frontend.js";
init({ module_or_path: "/seal_frontend_bg.wasm" });
