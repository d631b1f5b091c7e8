// Review's keyboard and its guard against losing edits. `?` lists every shortcut; `c` jumps to the category
// finder; while the form holds unsaved edits, a link or a reload asks before leaving (J, K and G are asked on
// the server, which sees the submitted form). Streamlit's own shortcuts (Ctrl+S, J, K, G, 1-9) stay theirs.
const TYPING = "input, textarea, select, [contenteditable='true']";

export default function (component) {
  const { data, parentElement } = component;
  const keys = window.__labelingKeys || (window.__labelingKeys = { dirty: false, token: null });
  keys.data = data;
  if (keys.token !== data.token) {
    keys.token = data.token; // a new image or version is shown: nothing typed yet
    keys.dirty = false;
  }
  let mark = parentElement.querySelector(".unsaved");
  if (!mark) {
    mark = document.createElement("span");
    mark.className = "unsaved";
    parentElement.appendChild(mark);
  }
  mark.dataset.pending = String(Boolean(data.pending));
  const unsaved = () => keys.dirty || Boolean(keys.data.pending);

  const overlay = () => {
    let panel = document.getElementById("labeling-shortcuts");
    if (panel) {
      panel.remove();
      return;
    }
    panel = document.createElement("div");
    panel.id = "labeling-shortcuts";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Keyboard shortcuts");
    const title = document.createElement("strong");
    title.textContent = "Keyboard shortcuts (? or Esc to close)";
    panel.appendChild(title);
    const table = document.createElement("table");
    for (const [key, what] of keys.data.shortcuts || []) {
      const row = table.insertRow();
      row.insertCell().textContent = key;
      row.insertCell().textContent = what;
    }
    panel.appendChild(table);
    Object.assign(panel.style, {
      position: "fixed", top: "80px", right: "32px", zIndex: 100000, background: "var(--st-background-color, #fff)",
      color: "var(--st-text-color, #31333f)", border: "1px solid rgba(128,128,128,0.5)", borderRadius: "8px",
      padding: "12px 16px", boxShadow: "0 4px 24px rgba(0,0,0,0.2)", fontSize: "0.9rem",
    });
    panel.addEventListener("click", () => panel.remove());
    document.body.appendChild(panel);
  };

  if (!keys.installed) {
    keys.onKey = (event) => {
      const typing = event.target instanceof Element && event.target.closest(TYPING);
      if (event.key === "Escape") document.getElementById("labeling-shortcuts")?.remove();
      if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "?") {
        event.preventDefault();
        overlay();
      } else if (event.key === "c" && keys.data.finder) {
        const input = document.querySelector(`.${keys.data.finder} input`);
        if (input) {
          event.preventDefault();
          input.focus();
          input.click();
        }
      }
    };
    keys.onInput = (event) => {
      if (keys.data.editor && event.target instanceof Element && event.target.closest(`.${keys.data.editor}`)) {
        keys.dirty = true;
      }
    };
    keys.onClick = (event) => {
      const link = event.target instanceof Element && event.target.closest("a[href]");
      if (!link || !unsaved() || link.target === "_blank") return;
      if (!window.confirm("This image has unsaved changes. Leave without saving?")) {
        event.preventDefault();
        event.stopPropagation();
      } else {
        keys.dirty = false;
      }
    };
    keys.onUnload = (event) => {
      if (unsaved()) event.preventDefault();
    };
    document.addEventListener("keydown", keys.onKey, true);
    document.addEventListener("input", keys.onInput, true);
    document.addEventListener("click", keys.onClick, true);
    window.addEventListener("beforeunload", keys.onUnload);
    keys.installed = true;
  }
  const mount = (keys.mounts = (keys.mounts || 0) + 1);
  document.documentElement.dataset.reviewKeys = data.token; // which view's keys are live (tests wait for it)
  return () => {
    if (keys.mounts !== mount) return; // a newer mount already took over: its listeners stay
    delete document.documentElement.dataset.reviewKeys;
    document.removeEventListener("keydown", keys.onKey, true);
    document.removeEventListener("input", keys.onInput, true);
    document.removeEventListener("click", keys.onClick, true);
    window.removeEventListener("beforeunload", keys.onUnload);
    document.getElementById("labeling-shortcuts")?.remove();
    keys.installed = false;
  };
}
