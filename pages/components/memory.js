// Remembers the reviewer's name in this browser (localStorage), so a reload or a new session starts with it.
const KEY = "labeling.reviewer";

export default function (component) {
  const { data, setStateValue } = component;
  let stored = "";
  try {
    stored = window.localStorage.getItem(KEY) || "";
  } catch (error) {
    return; // storage switched off: the name lasts for this session only
  }
  if (data.name) {
    if (data.name !== stored) window.localStorage.setItem(KEY, data.name);
  } else if (stored && !window.__labelingNameOffered) {
    window.__labelingNameOffered = true; // offer it once per page load: clearing the field stays cleared
    setStateValue("stored", stored);
  }
}
