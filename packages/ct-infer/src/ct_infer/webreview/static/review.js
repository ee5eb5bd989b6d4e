// ct-infer review: a grid of crops, decided with the keyboard, each decision saved at once.
"use strict";

const TOKEN = document.querySelector('meta[name="review-token"]').content;
const PAGE = 24;
const NAMES = {
  accept: "accepted", keep: "label kept", relabel: "relabelled",
  not_animal: "not an animal", bad_crop: "bad crop",
};
const $ = (id) => document.getElementById(id);

const state = { queue: null, page: 0, focus: 0, saving: 0, failed: false, chain: Promise.resolve() };

async function getJSON(url) {
  const r = await fetch(url, { headers: { "x-review-token": TOKEN } });
  if (!r.ok) throw new Error((await r.text()) || r.statusText);
  return r.json();
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function pictureURL(it) {
  const path = it.path.split("/").map(encodeURIComponent).join("/");
  const box = it.bbox ? "&bbox=" + it.bbox.map((v) => v.toFixed(5)).join(",") : "";
  return `/files/${it.root}/${path}?size=256${box}`;
}

function decisionText(it) {
  const d = it.decision;
  if (!d) return "";
  return d.label && d.kind !== "keep" ? `${NAMES[d.kind]}: ${d.label}` : NAMES[d.kind];
}

function card(it, i) {
  const training = state.queue.kind === "training";
  const buttons = el("div", { class: "btns" });
  const add = (kind, text) => {
    const b = el("button", { type: "button", textContent: text, "data-kind": kind });
    b.addEventListener("click", (e) => { e.stopPropagation(); setFocus(i); act(kind); });
    buttons.append(b);
  };
  add("accept", "accept (a)");
  if (training) add("keep", "keep label (k)");
  add("relabel", "other… (/)");
  add("not_animal", "not animal (n)");
  add("bad_crop", "bad crop (b)");
  const meta = el("div", { class: "meta" });
  if (training) meta.append(el("div", { class: "lab" }, "label: ", el("b", { textContent: it.label })));
  meta.append(el("div", { class: "pred" }, "predicted: ", el("b", { textContent: it.predicted }),
    ` ${it.confidence.toFixed(2)}`));
  meta.append(el("div", { class: "note", textContent: it.note }));
  meta.append(el("div", { class: "dec", textContent: decisionText(it) }));
  const node = el("article", { class: "card", "data-i": String(i), "data-key": it.key },
    el("img", { src: pictureURL(it), alt: it.key, loading: "lazy", width: 256, height: 256 }),
    meta, buttons);
  node.addEventListener("click", () => setFocus(i));
  paint(node, it);
  return node;
}

function paint(node, it) {
  node.classList.toggle("decided", !!it.decision);
  for (const k of Object.keys(NAMES)) node.classList.toggle("d-" + k, !!it.decision && it.decision.kind === k);
  node.querySelector(".dec").textContent = decisionText(it);
}

function render() {
  const q = state.queue;
  const grid = $("grid");
  grid.replaceChildren();
  const pages = Math.max(1, Math.ceil(q.items.length / PAGE));
  state.page = Math.min(Math.max(0, state.page), pages - 1);
  const start = state.page * PAGE;
  q.items.slice(start, start + PAGE).forEach((it, j) => grid.append(card(it, start + j)));
  if (!q.items.length) grid.append(el("p", { class: "empty", textContent: "Nothing to review in this queue." }));
  $("pageinfo").textContent = `page ${state.page + 1} of ${pages}`;
  $("output").textContent = `${q.title} — decisions go to ${q.output}`;
  progress();
  highlight();
}

function progress() {
  const q = state.queue;
  const done = q.items.filter((it) => it.decision).length;
  $("progress").textContent = `${done} of ${q.items.length} decided`;
  const opt = [...$("queue").options].find((o) => o.value === q.id);
  if (opt) opt.textContent = `${q.title} — ${done}/${q.items.length}`;
}

function highlight() {
  for (const n of document.querySelectorAll(".card.focus")) n.classList.remove("focus");
  const node = document.querySelector(`.card[data-i="${state.focus}"]`);
  if (node) { node.classList.add("focus"); node.scrollIntoView({ block: "nearest" }); }
}

function setFocus(i) {
  const n = state.queue.items.length;
  if (!n) return;
  state.focus = Math.min(Math.max(0, i), n - 1);
  const page = Math.floor(state.focus / PAGE);
  if (page !== state.page) { state.page = page; render(); } else highlight();
}

function columns() {
  const cards = [...document.querySelectorAll(".card")];
  if (!cards.length) return 1;
  const top = cards[0].offsetTop;
  return Math.max(1, cards.filter((c) => c.offsetTop === top).length);
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function save(it, kind, label) {
  const before = it.decision;
  it.decision = kind === "clear" ? null : { kind, label: kind === "accept" ? it.predicted : kind === "keep" ? it.label : label };
  const node = document.querySelector(`.card[data-key="${CSS.escape(it.key)}"]`);
  if (node) paint(node, it);
  progress();
  state.saving += 1;
  status("saving…");
  const queue = state.queue.id;
  state.chain = state.chain.then(async () => {
    try {
      const r = await fetch("/api/decide", {
        method: "POST",
        headers: { "content-type": "application/json", "x-review-token": TOKEN },
        body: JSON.stringify({ queue, key: it.key, kind, label }),
      });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      it.decision = body.decision;
    } catch (err) {
      it.decision = before;
      state.failed = true;
      status(`not saved: ${err.message}`, true);
    }
    state.saving -= 1;
    const shown = state.queue.items.find((x) => x.key === it.key);  // the queue may have been reloaded
    if (shown) {
      shown.decision = it.decision;
      const n = document.querySelector(`.card[data-key="${CSS.escape(it.key)}"]`);
      if (n) paint(n, shown);
    }
    progress();
    if (!state.saving) {
      if (!state.failed) status("all saved ✓");
      state.failed = false;
    }
  });
}

function act(kind, label) {
  const it = state.queue.items[state.focus];
  if (!it) return;
  if (kind === "keep" && state.queue.kind !== "training") return;
  if (kind === "relabel" && label === undefined) { openPicker(it); return; }
  save(it, kind, label);
  if (kind !== "clear") setFocus(state.focus + 1);
}

// ------------------------------------------------------------ label picker (type-ahead)

const picker = { open: false, matches: [], on: 0 };

function openPicker(it) {
  picker.open = true;
  $("pickfor").textContent = it.key;
  $("picker").hidden = false;
  $("pick").value = "";
  filterChoices();
  $("pick").focus();
}

function closePicker() {
  picker.open = false;
  $("pick").blur();  // the next key goes to the grid at once, not to the hidden input
  $("picker").hidden = true;
}

function filterChoices() {
  const q = $("pick").value.trim().toLowerCase();
  const labels = state.queue.labels;
  const starts = labels.filter((l) => l.toLowerCase().startsWith(q));
  const inside = labels.filter((l) => !l.toLowerCase().startsWith(q) && l.toLowerCase().includes(q));
  picker.matches = [...starts, ...inside];
  picker.on = 0;
  drawChoices();
}

function drawChoices() {
  const list = $("choices");
  list.replaceChildren(...picker.matches.slice(0, 50).map((l, i) => {
    const li = el("li", { textContent: l, role: "option", class: i === picker.on ? "on" : "" });
    li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(l); });
    return li;
  }));
}

function pick(label) {
  closePicker();
  if (label) act("relabel", label);
}

$("pick").addEventListener("input", filterChoices);
$("pick").addEventListener("keydown", (e) => {
  if (!picker.open) return;  // closed: the key is the grid's
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    const n = Math.min(picker.matches.length, 50);
    if (n) picker.on = (picker.on + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
    drawChoices();
  } else if (e.key === "Enter") {
    e.preventDefault();
    pick(picker.matches[picker.on]);
  } else if (e.key === "Escape") {
    e.preventDefault();
    closePicker();
  }
  e.stopPropagation();
});

// ------------------------------------------------------------ keyboard

document.addEventListener("keydown", (e) => {
  if (picker.open || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target instanceof HTMLSelectElement) return;
  const help = $("help");
  if (!help.hidden) { if (e.key === "Escape" || e.key === "?") help.hidden = true; e.preventDefault(); return; }
  const keys = {
    ArrowRight: () => setFocus(state.focus + 1),
    ArrowLeft: () => setFocus(state.focus - 1),
    ArrowDown: () => setFocus(state.focus + columns()),
    ArrowUp: () => setFocus(state.focus - columns()),
    a: () => act("accept"), Enter: () => act("accept"),
    k: () => act("keep"),
    "/": () => act("relabel"), o: () => act("relabel"),
    n: () => act("not_animal"),
    b: () => act("bad_crop"),
    u: () => act("clear"), Backspace: () => act("clear"),
    "]": () => setFocus((state.page + 1) * PAGE), PageDown: () => setFocus((state.page + 1) * PAGE),
    "[": () => setFocus((state.page - 1) * PAGE), PageUp: () => setFocus((state.page - 1) * PAGE),
    "?": () => { help.hidden = false; },
  };
  const f = keys[e.key];
  if (f && state.queue) { e.preventDefault(); f(); }
});

$("prev").addEventListener("click", () => setFocus((state.page - 1) * PAGE));
$("next").addEventListener("click", () => setFocus((state.page + 1) * PAGE));
$("helpbtn").addEventListener("click", () => { $("help").hidden = false; });
$("help").addEventListener("click", () => { $("help").hidden = true; });
$("picker").addEventListener("click", (e) => { if (e.target === $("picker")) closePicker(); });

// ------------------------------------------------------------ loading

let loads = 0;

async function loadQueue(id) {
  const mine = ++loads;
  delete document.body.dataset.ready;
  await state.chain;  // decisions still on their way are part of what the server sends
  const q = await getJSON("/api/queue/" + encodeURIComponent(id));
  if (mine !== loads) return;  // another queue was chosen meanwhile
  state.queue = q;
  const first = q.items.findIndex((it) => !it.decision);
  state.focus = first < 0 ? 0 : first;  // resume at the first crop not decided yet
  state.page = Math.floor(state.focus / PAGE);
  history.replaceState(null, "", "#q=" + encodeURIComponent(id));
  $("queue").value = id;
  render();
  if (document.activeElement instanceof HTMLElement) document.activeElement.blur();  // keys drive the grid
  document.body.dataset.ready = id;
}

async function main() {
  const s = await getJSON("/api/session");
  const select = $("queue");
  select.replaceChildren(...s.queues.map((q) =>
    el("option", { value: q.id, textContent: `${q.title} — ${q.decided}/${q.count}` })));
  select.addEventListener("change", () => { select.blur(); loadQueue(select.value); });
  const wanted = decodeURIComponent((location.hash.match(/q=([^&]+)/) || [])[1] || "");
  const open = s.queues.find((q) => q.id === wanted) || s.queues.find((q) => q.decided < q.count) || s.queues[0];
  if (open) await loadQueue(open.id);
  else $("grid").append(el("p", { class: "empty", textContent: "Nothing to review." }));
}

main().catch((err) => status(`could not load: ${err.message}`, true));
