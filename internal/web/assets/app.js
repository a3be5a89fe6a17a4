// reprise crisis room: live updates over Server-Sent Events (no reload, no
// polling), the graph's pan, zoom and search. No inline script: the CSP
// forbids it.
(function () {
  "use strict";
  var STATES = /(^|\s)st-[a-z]+/g;

  // recolour paints node id in state st wherever the page shows it.
  var recolour = function (id, st) {
    var node = document.getElementById("node-state");
    if (node && location.pathname.endsWith("/nodes/" + id)) {
      node.textContent = st;
      node.className = "st-" + st;
    }
    document.querySelectorAll('[data-id="' + CSS.escape(id) + '"]').forEach(function (el) {
      el.setAttribute("class", (el.getAttribute("class") || "").replace(STATES, "") + " st-" + st);
      el.setAttribute("data-state", st);
      var t = el.querySelector("title");
      if (t) { t.textContent = t.textContent.replace(/\([a-z]+\)$/, "(" + st + ")"); }
    });
  };

  var graph = null; // the graph's pan and zoom, kept across refreshes

  var live = document.getElementById("live");
  if (live && window.EventSource) {
    var pending = false, last = 0;
    var every = parseInt(live.getAttribute("data-every") || "300", 10);
    var refresh = function () {
      pending = false;
      last = Date.now();
      var frag = live.getAttribute("data-fragment");
      if (!frag) { return; }
      fetch(frag, {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html === null) { return; }
        var svg = document.getElementById("graph-svg");
        if (svg) { // the aggregated graph: swap the drawing, keep the view and the search box
          var t = document.createElement("template");
          t.innerHTML = html;
          var fresh = t.content.getElementById("graph-svg");
          if (fresh) { svg.replaceWith(fresh); if (graph) { graph.attach(); } }
          return;
        }
        live.innerHTML = html;
      });
    };
    var kick = function () {
      if (!pending) {
        pending = true;
        setTimeout(refresh, Math.max(300, every - (Date.now() - last)));
      }
    };
    var es = new EventSource(live.getAttribute("data-events"));
    es.addEventListener("entry", function (ev) {
      var e = JSON.parse(ev.data);
      if (e.node && e.state) { recolour(e.node, e.state); }
      if (typeof window.repriseEntry === "function") { window.repriseEntry(e); }
      kick();
    });
    // On etcd: an agent registered, drained or went (no journal entry).
    es.addEventListener("agents", kick);
  }

  var box = document.getElementById("graph");
  if (box && document.getElementById("graph-svg")) {
    graph = {x: 0, y: 0, s: 1, svg: null, vp: null, fitted: false};
    var clamp = function (s) { return Math.min(4, Math.max(0.03, s)); };
    var apply = function () {
      graph.vp.setAttribute("transform", "translate(" + graph.x + "," + graph.y + ") scale(" + graph.s + ")");
    };
    var zoomAt = function (px, py, f) {
      var s = clamp(graph.s * f);
      graph.x = px - (px - graph.x) * s / graph.s;
      graph.y = py - (py - graph.y) * s / graph.s;
      graph.s = s;
      apply();
    };
    var fit = function () {
      var r = graph.svg.getBoundingClientRect();
      var w = +graph.svg.getAttribute("data-w"), h = +graph.svg.getAttribute("data-h");
      var s = clamp(Math.min(r.width / w, r.height / h, 1));
      graph.s = s;
      graph.x = Math.max(0, (r.width - w * s) / 2);
      graph.y = 0;
      apply();
    };
    // centre shows element el at a readable scale.
    var centre = function (el) {
      var rect = el.querySelector("rect");
      var r = graph.svg.getBoundingClientRect();
      var x = +rect.getAttribute("x") + (+rect.getAttribute("width")) / 2;
      var y = +rect.getAttribute("y") + (+rect.getAttribute("height")) / 2;
      graph.s = Math.max(graph.s, 1);
      graph.x = r.width / 2 - x * graph.s;
      graph.y = r.height / 2 - y * graph.s;
      apply();
    };
    graph.attach = function () {
      graph.svg = document.getElementById("graph-svg");
      graph.vp = document.getElementById("viewport");
      if (!graph.fitted) { graph.fitted = true; fit(); } else { apply(); }
    };
    graph.attach();
    box.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = graph.svg.getBoundingClientRect();
      zoomAt(ev.clientX - r.left, ev.clientY - r.top, ev.deltaY < 0 ? 1.15 : 1 / 1.15);
    }, {passive: false});
    var drag = null, moved = false;
    box.addEventListener("mousedown", function (ev) {
      if (ev.button !== 0) { return; }
      drag = {x: ev.clientX, y: ev.clientY, gx: graph.x, gy: graph.y};
      moved = false;
      ev.preventDefault();
    });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) { return; }
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) { moved = true; box.classList.add("dragging"); }
      graph.x = drag.gx + dx;
      graph.y = drag.gy + dy;
      apply();
    });
    window.addEventListener("mouseup", function () { drag = null; box.classList.remove("dragging"); });
    // A drag that ends on a node does not open it.
    box.addEventListener("click", function (ev) { if (moved) { ev.preventDefault(); moved = false; } }, true);
    var button = function (id, f) { var b = document.getElementById(id); if (b) { b.addEventListener("click", f); } };
    var mid = function (f) { return function () { var r = graph.svg.getBoundingClientRect(); zoomAt(r.width / 2, r.height / 2, f); }; };
    button("zoom-in", mid(1.25));
    button("zoom-out", mid(0.8));
    button("zoom-fit", fit);

    var search = document.getElementById("search"), count = document.getElementById("search-count");
    if (search && count) {
      search.addEventListener("input", function () {
        var q = search.value.trim().toLowerCase(), first = null, n = 0;
        box.querySelectorAll(".gn").forEach(function (a) {
          var hit = q !== "" && a.getAttribute("data-search").indexOf(q) >= 0;
          a.classList.toggle("dim", q !== "" && !hit);
          a.classList.toggle("hit", hit);
          if (hit) { n++; if (!first) { first = a; } }
        });
        box.classList.toggle("searching", q !== "");
        count.textContent = q === "" ? "" : n + " found" + (n > 0 ? " (Enter lists them)" : "");
        if (first) { centre(first); }
      });
    }
  }
})();
