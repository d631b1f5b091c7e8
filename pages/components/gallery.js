// The Review gallery: tiles of one height (letterboxed), a click opens the image, a tick selects it.
// Every text arrives as data and is set with textContent: nothing from outside becomes markup.
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let grid = parentElement.querySelector(".grid");
  if (!grid) {
    grid = document.createElement("div");
    grid.className = "grid";
    parentElement.appendChild(grid);
  }
  grid.style.setProperty("--tile-height", `${data.height || 180}px`);
  const tiles = [];
  for (const tile of data.tiles || []) {
    const card = document.createElement("div");
    card.className = "tile" + (tile.selected ? " selected" : "") + (tile.current ? " current" : "");
    card.dataset.imageId = String(tile.id);
    card.tabIndex = 0;
    card.setAttribute("role", "button");
    card.setAttribute("aria-label", `Open ${tile.name}`);
    const frame = document.createElement("div");
    frame.className = "frame";
    const img = document.createElement("img");
    img.src = tile.src;
    img.alt = tile.name;
    img.decoding = "async";
    frame.appendChild(img);
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "pick";
    pick.checked = Boolean(tile.selected);
    pick.setAttribute("aria-label", `Select ${tile.name}`);
    pick.addEventListener("click", (event) => {
      event.stopPropagation();
      setTriggerValue("toggle", tile.id);
    });
    frame.appendChild(pick);
    card.appendChild(frame);
    for (const [i, line] of (tile.lines || []).entries()) {
      const text = document.createElement("div");
      text.className = i === 0 ? "name" : "line";
      text.textContent = line;
      card.appendChild(text);
    }
    const open = () => {
      card.blur(); // page keys (J, K, G) go to the focus view, not to this tile's component
      setTriggerValue("open", tile.id);
    };
    card.addEventListener("click", open);
    card.addEventListener("keydown", (event) => {
      if (event.key === "Enter") open();
    });
    tiles.push(card);
  }
  const first = data.tiles?.[0]?.id ?? null;
  if (grid.__first !== undefined && grid.__first !== first && grid.getBoundingClientRect().top < 0) {
    grid.scrollIntoView({ block: "start" }); // a new page starts at its top
  }
  grid.__first = first;
  grid.replaceChildren(...tiles);
}
