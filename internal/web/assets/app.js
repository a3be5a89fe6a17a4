// reprise crisis room: live updates over Server-Sent Events (no reload, no
// polling), graph search and zoom. No inline script: the CSP forbids it.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (live && window.EventSource) {
    var pending = false;
    var refresh = function () {
      pending = false;
      var frag = live.getAttribute("data-fragment");
      if (!frag) { return; }
      fetch(frag, {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html !== null) { live.innerHTML = html; }
      });
    };
    var es = new EventSource(live.getAttribute("data-events"));
    es.addEventListener("entry", function (ev) {
      var e = JSON.parse(ev.data);
      var st = document.getElementById("node-state");
      if (st && e.node && location.pathname.endsWith("/nodes/" + e.node) && e.state) {
        st.textContent = e.state;
        st.className = "st-" + e.state;
      }
      document.querySelectorAll('.gn[title^="' + CSS.escape(e.node || "") + ':"]').forEach(function (a) {
        if (e.state) { a.className = "gn st-" + e.state; a.title = e.node + ": " + e.state; }
      });
      if (!pending) { pending = true; setTimeout(refresh, 300); }
    });
  }
  var search = document.getElementById("search");
  if (search) {
    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      var first = null;
      document.querySelectorAll(".gn").forEach(function (a) {
        var hit = q !== "" && a.getAttribute("data-search").indexOf(q) >= 0;
        a.classList.toggle("hidden", q !== "" && !hit);
        a.classList.toggle("hit", hit);
        if (hit && !first) { first = a; }
      });
      if (first) { first.scrollIntoView({block: "center", inline: "center"}); }
    });
  }
  var waves = document.getElementById("waves"), scale = 1;
  var zoom = function (f) { scale = Math.min(3, Math.max(0.2, scale * f)); waves.style.transform = "scale(" + scale + ")"; };
  var zi = document.getElementById("zoom-in"), zo = document.getElementById("zoom-out");
  if (zi && waves) { zi.addEventListener("click", function () { zoom(1.25); }); }
  if (zo && waves) { zo.addEventListener("click", function () { zoom(0.8); }); }
  var g = document.getElementById("graph");
  if (g) {
    g.addEventListener("wheel", function (ev) { if (ev.ctrlKey) { ev.preventDefault(); zoom(ev.deltaY < 0 ? 1.1 : 0.9); } }, {passive: false});
    var drag = null;
    g.addEventListener("mousedown", function (ev) { if (ev.target === g || ev.target.classList.contains("wave")) { drag = {x: ev.clientX, y: ev.clientY, l: g.scrollLeft, t: g.scrollTop}; } });
    window.addEventListener("mouseup", function () { drag = null; });
    window.addEventListener("mousemove", function (ev) { if (drag) { g.scrollLeft = drag.l - (ev.clientX - drag.x); g.scrollTop = drag.t - (ev.clientY - drag.y); } });
  }
})();
