// matrix.html (vm/html.py): filter, groups and the detail panel.  Inlined
// into the page; every text from the results goes in through textContent.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const table = document.getElementById("m");
  const form = document.getElementById("filter");
  const boxes = [...form.querySelectorAll("input[type=checkbox]")];
  const q = document.getElementById("q");
  const detail = document.getElementById("detail");
  const dbody = document.getElementById("dbody");
  const PROBLEMS = ["FAIL", "ERROR", "XPASS", "FLAKY", "crash"];
  const rows = [...table.querySelectorAll("tr[data-t]")];
  const statusOf = (td) => [...td.classList].find((c) => c.startsWith("s-")).slice(2);
  // Per row: the statuses of its cells, "crash" for a cell blamed for a crash.
  const rowStat = rows.map((tr) => new Set([...tr.cells].slice(1).flatMap(
    (td) => td.classList.contains("x") ? [statusOf(td), "crash"] : [statusOf(td)])));

  // The URL fragment: status=FAIL,ERROR & q=text & kernel=K & test=NODEID.
  // Parsed by hand: URLSearchParams would read the "+" of "7.3.4+deb13" as a space.
  function readHash() {
    const p = {};
    for (const part of location.hash.slice(1).split("&")) {
      const i = part.indexOf("=");
      if (i > 0) p[decodeURIComponent(part.slice(0, i))] = decodeURIComponent(part.slice(i + 1));
    }
    return p;
  }
  function writeHash(p) {
    // "/", ":" and "," kept readable in a link to a test (decodeURIComponent takes them either way)
    const enc = (s) => encodeURIComponent(s).replace(/%2C/g, ",").replace(/%2F/g, "/").replace(/%3A/g, ":");
    const s = Object.entries(p).filter(([, v]) => v).map(([k, v]) => k + "=" + enc(v)).join("&");
    history.replaceState(null, "", s ? "#" + s : location.pathname + location.search);
  }
  function filterState() {
    const on = boxes.filter((b) => b.checked).map((b) => b.value);
    return {status: on.length === boxes.length ? "" : on.join(","), q: q.value};
  }

  function applyFilter() {
    const on = new Set(boxes.filter((b) => b.checked).map((b) => b.value));
    const needle = q.value.toLowerCase();
    let shown = 0;
    rows.forEach((tr, i) => {
      const ok = [...rowStat[i]].some((s) => on.has(s)) &&
        (!needle || D.tests[+tr.dataset.t].toLowerCase().includes(needle));
      tr.hidden = !ok;
      shown += ok;
    });
    for (const f of table.querySelectorAll("tr.f")) {  // a file row goes with its tests
      let next = f.nextElementSibling, any = false;
      for (; next && next.dataset.t !== undefined; next = next.nextElementSibling) any = any || !next.hidden;
      f.hidden = !any;
    }
    for (const g of table.tBodies) {
      const n = g.querySelectorAll("tr[data-t]:not([hidden])").length;
      g.hidden = n === 0;
      g.querySelector(".gn").textContent = n + " / " + g.querySelectorAll("tr[data-t]").length;
    }
    document.getElementById("shown").textContent = "showing " + shown + " of " + rows.length + " tests";
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fields(obj) {
    const dl = el("dl");
    for (const [k, v] of Object.entries(obj)) {
      if (v === null || v === undefined || v === "" || typeof v === "object") continue;
      dl.append(el("dt", k), el("dd", v));
    }
    return dl;
  }
  // pytest's "E   " lines (the assertion and its explanation) stand out.
  function traceback(text) {
    const pre = el("pre");
    for (const line of text.split("\n")) pre.append(/^E /.test(line) ? el("b", line + "\n", "err") : line + "\n");
    return pre;
  }
  function crashBlock(crash, nodes) {
    nodes.push(el("h3", "⚡ " + (crash.title || crash.kind || "crash")));
    nodes.push(fields({kind: crash.kind, fingerprint: crash.fingerprint, signature: crash.signature,
                       "running then": (crash.tests || []).join("  "), "came after": crash.after}));
    if (crash.excerpt) nodes.push(el("pre", crash.excerpt));
  }
  function show(nodes, td) {
    dbody.replaceChildren(...nodes);
    detail.hidden = false;
    document.body.style.paddingBottom = window.innerHeight / 2 + detail.offsetHeight + "px";  // the last rows can scroll above it
    table.querySelectorAll(".sel").forEach((c) => c.classList.remove("sel"));
    if (td) {
      td.classList.add("sel");
      td.closest("tbody").classList.remove("collapsed");
      td.scrollIntoView({block: "nearest", inline: "nearest"});
      // a cell the (sticky) kernel headers or the panel cover goes to the middle of what they leave
      const head = table.tHead.getBoundingClientRect().height, foot = window.innerHeight - detail.offsetHeight;
      const r = td.getBoundingClientRect();
      if (r.top < head || r.bottom > foot) window.scrollBy(0, r.top - (head + foot) / 2);
    }
  }

  function showKernel(j) {
    const k = D.kernels[j];
    const nodes = [el("h2", k.name), fields(k.summary)];
    if (k.summary.reason) nodes.push(el("h3", "reason"), el("pre", k.summary.reason));
    k.crashes.forEach((c) => crashBlock(c, nodes));
    if (k.console) nodes.push(el("h3", "console excerpt"), el("pre", k.console));
    show(nodes);
  }

  function showCell(i, j) {
    const tr = rows.find((r) => +r.dataset.t === i);
    if (!tr) return;
    const td = tr.cells[j + 1], k = D.kernels[j], st = statusOf(td), nid = D.tests[i];
    const c = D.cells[i + "," + j];
    const nodes = [el("h2", nid), el("p", null)], more = [];
    nodes[1].append(el("span", st, "n s-" + st), " on " + k.name);
    if (c) {
      const [msg, text] = [D.strings[c[0]], D.strings[c[1]]];
      nodes.push(fields({"duration s": c[2], "harness wall s": c[3]}));
      const label = {FAIL: "failure", ERROR: "error", SKIP: "skip reason", XFAIL: "xfail reason"}[st] || "message";
      if (msg) nodes.push(el("h3", label), el("pre", msg));
      // A skip's text is "file:line: reason": worth showing only when it adds more.
      if (text && text !== msg && !text.endsWith(": " + msg)) more.push(el("h3", "details"), traceback(text));
    } else if (k.summary.status !== "ok") {
      nodes.push(el("p", "no result: kernel " + k.summary.status + ": " + (k.summary.reason || "")));
    } else {
      nodes.push(el("p", "not run on this kernel"));
    }
    // the crash blamed on it before the long texts: the traceback, the console
    k.crashes.filter((x) => (x.tests || []).includes(nid) || x.after === nid).forEach((x) => crashBlock(x, nodes));
    if (k.console && (td.classList.contains("x") || !c)) more.push(el("h3", "console excerpt"), el("pre", k.console));
    show(nodes.concat(more), td);
  }

  function fromHash() {
    const p = readHash();
    const want = p.status ? new Set(p.status.toUpperCase().split(",")) : null;
    boxes.forEach((b) => { b.checked = !want || want.has(b.value.toUpperCase()); });
    q.value = p.q || "";
    applyFilter();
    const j = D.kernels.findIndex((k) => k.name === p.kernel);
    const i = D.tests.indexOf(p.test);
    if (j >= 0 && i >= 0) showCell(i, j);
    else if (j >= 0) showKernel(j);
  }

  function select(extra) {
    writeHash({...filterState(), ...extra});
  }
  form.addEventListener("change", () => { applyFilter(); select(readHashSel()); });
  q.addEventListener("input", () => { applyFilter(); select(readHashSel()); });
  const readHashSel = () => { const p = readHash(); return {kernel: p.kernel, test: p.test}; };
  form.addEventListener("click", (ev) => {
    const preset = ev.target.dataset && ev.target.dataset.preset;
    if (preset) {
      boxes.forEach((b) => { b.checked = preset === "all" || PROBLEMS.includes(b.value); });
      applyFilter();
      select(readHashSel());
    }
  });
  document.getElementById("collapse").addEventListener("click", (ev) => {
    const collapse = ev.target.textContent === "collapse all";
    for (const g of table.tBodies) g.classList.toggle("collapsed", collapse);
    ev.target.textContent = collapse ? "expand all" : "collapse all";
  });
  table.addEventListener("click", (ev) => {
    const tog = ev.target.closest(".tog");
    if (tog) {
      const g = tog.closest("tbody");
      tog.setAttribute("aria-expanded", String(!g.classList.toggle("collapsed")));
      return;
    }
    const td = ev.target.closest("td.c"), th = ev.target.closest("th[data-k]");
    if (td) {
      const i = +td.parentElement.dataset.t, j = td.cellIndex - 1;
      showCell(i, j);
      select({kernel: D.kernels[j].name, test: D.tests[i]});
    } else if (th) {
      showKernel(+th.dataset.k);
      select({kernel: D.kernels[+th.dataset.k].name});
    }
  });
  function close() {
    detail.hidden = true;
    document.body.style.paddingBottom = "";
    table.querySelectorAll(".sel").forEach((c) => c.classList.remove("sel"));
    select({});
  }
  document.getElementById("close").addEventListener("click", close);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") close(); });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
