// The focus view's image: fits the box, zooms with the wheel, the buttons or a double click up to 100% of the
// original's pixels, pans by dragging. The large preview shows first; the original loads once zoom needs it.
// The next images' previews are fetched ahead so J and K show them from the browser cache.
export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(".viewer");
  if (!root) {
    root = document.createElement("div");
    root.className = "viewer";
    root.innerHTML =
      '<div class="box"><img alt="" draggable="false"></div>' +
      '<div class="bar"><button data-act="fit">Fit</button><button data-act="out">−</button>' +
      '<button data-act="in">+</button><button data-act="full">100%</button><span class="zoom"></span></div>';
    parentElement.appendChild(root);
  }
  const box = root.querySelector(".box");
  const img = root.querySelector("img");
  const label = root.querySelector(".zoom");
  box.style.height = `${data.height || 560}px`;
  const view = root.__view || (root.__view = { scale: 0, x: 0, y: 0, key: null, original: false });
  const fresh = view.key !== data.key;
  if (fresh) {
    Object.assign(view, { key: data.key, scale: 0, x: 0, y: 0, original: false, probed: false });
    view.w = data.width || 0;
    view.h = data.height_px || 0;
    img.alt = data.name || "";
    img.src = data.preview;
  }
  for (const url of data.prefetch || []) {
    const ahead = new Image();
    ahead.src = url;
  }

  const fit = () => {
    const bw = box.clientWidth, bh = box.clientHeight;
    return view.w && view.h ? Math.min(1, bw / view.w, bh / view.h) : 1;
  };
  const draw = () => {
    if (!view.w || !view.h) return;
    const bw = box.clientWidth, bh = box.clientHeight;
    const sw = view.w * view.scale, sh = view.h * view.scale;
    // keep the picture in the box: centred when smaller, edges never inside the box when larger
    view.x = sw <= bw ? (bw - sw) / 2 : Math.min(0, Math.max(bw - sw, view.x));
    view.y = sh <= bh ? (bh - sh) / 2 : Math.min(0, Math.max(bh - sh, view.y));
    img.style.width = `${sw}px`;
    img.style.height = `${sh}px`;
    img.style.transform = `translate(${view.x}px, ${view.y}px)`;
    const percent = Math.round(view.scale * 100);
    label.textContent = `${percent}%` + (view.w ? ` of ${view.w}×${view.h}` : "");
    root.dataset.zoom = String(percent);
    if (!view.original && data.original && sw > img.naturalWidth * 1.05) {
      view.original = true; // the preview would be blurry from here on
      img.src = data.original;
    }
  };
  const zoomTo = (scale, cx, cy) => {
    const min = fit();
    const next = Math.max(min, Math.min(1, scale));
    const px = cx ?? box.clientWidth / 2, py = cy ?? box.clientHeight / 2;
    view.x = px - ((px - view.x) * next) / (view.scale || next);
    view.y = py - ((py - view.y) * next) / (view.scale || next);
    view.scale = next;
    draw();
  };
  img.onload = () => {
    if (!view.w || !view.h) {
      view.w = img.naturalWidth; // the preview's size stands in until the original's is known
      view.h = img.naturalHeight;
      if (!data.width && data.original && !view.probed) {
        view.probed = true; // not scanned: fetch the original once to learn its size (100% means its pixels)
        const probe = new Image();
        const key = view.key;
        probe.onload = () => {
          if (view.key !== key || !probe.naturalWidth) return;
          view.scale *= view.w / probe.naturalWidth;
          view.w = probe.naturalWidth;
          view.h = probe.naturalHeight;
          draw();
        };
        probe.src = data.original;
      }
    }
    if (!view.scale) view.scale = fit();
    draw();
  };
  if (!root.__wired) {
    root.__wired = true;
    box.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = box.getBoundingClientRect();
      zoomTo(view.scale * (event.deltaY < 0 ? 1.25 : 0.8), event.clientX - rect.left, event.clientY - rect.top);
    }, { passive: false });
    box.addEventListener("dblclick", (event) => {
      const rect = box.getBoundingClientRect();
      zoomTo(view.scale < 1 ? 1 : fit(), event.clientX - rect.left, event.clientY - rect.top);
    });
    let drag = null;
    box.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX - view.x, y: event.clientY - view.y };
      box.setPointerCapture(event.pointerId);
      box.classList.add("dragging");
    });
    box.addEventListener("pointermove", (event) => {
      if (!drag) return;
      view.x = event.clientX - drag.x;
      view.y = event.clientY - drag.y;
      draw();
    });
    const end = () => { drag = null; box.classList.remove("dragging"); };
    box.addEventListener("pointerup", end);
    box.addEventListener("pointercancel", end);
    root.querySelector(".bar").addEventListener("click", (event) => {
      const button = event.target.closest("button");
      button?.blur(); // page keys (J, K, G) keep working after a zoom click
      const act = button?.dataset.act;
      if (act === "fit") zoomTo(fit());
      if (act === "full") zoomTo(1);
      if (act === "in") zoomTo(view.scale * 1.5);
      if (act === "out") zoomTo(view.scale / 1.5);
    });
    new ResizeObserver(() => view.scale && zoomTo(Math.max(view.scale, fit()))).observe(box);
  }
  root.__zoomTo = zoomTo;
  if (!fresh && img.complete) draw();
}
