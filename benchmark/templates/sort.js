"use strict";
// Sortable leaderboard tables (inlined by leaderboard.html; the page's CSP allows this script
// by its sha256 only). A detector is one <tbody>, so sorting moves whole detectors: in a
// train x test matrix the row that decides is the training chosen in the select above the
// table. Unmeasured cells sort last either way. A link ending in #sort=TABLEID:COLUMN:desc
// (or :asc; then optionally :TRAINING for a matrix) opens the page sorted, e.g.
// #sort=cross_quality-synthetic-mini-video:5:desc:c40.
(function () {
  function rowFor(tbody, training) {
    var rows = tbody.rows;
    for (var i = 0; i < rows.length; i++) {
      if (!training || rows[i].getAttribute("data-training") === training) {
        return rows[i];
      }
    }
    return null;
  }

  function keyOf(tbody, column, training) {
    // label cells span every row of the block and sit in its first row
    var row = column.kind === "label" ? tbody.rows[0] : rowFor(tbody, training);
    var cell = row ? row.querySelector("[data-col='" + column.index + "']") : null;
    var text = cell ? cell.getAttribute("data-v") : "";
    if (column.kind === "label") {
      return text || "";
    }
    return text === null || text === "" ? NaN : parseFloat(text);
  }

  function sortTable(table, index, descending) {
    var header = table.querySelector("th[data-col='" + index + "']");
    if (!header) {
      return;
    }
    var column = { index: index, kind: header.getAttribute("data-kind") };
    var select = document.getElementById(table.id + "-training");
    var training = select ? select.value : null;
    var blocks = Array.prototype.slice.call(table.tBodies);
    blocks.sort(function (a, b) {
      var x = keyOf(a, column, training);
      var y = keyOf(b, column, training);
      if (column.kind === "label") {
        return descending ? y.localeCompare(x) : x.localeCompare(y);
      }
      if (isNaN(x) || isNaN(y)) {
        return isNaN(x) - isNaN(y);
      }
      return descending ? y - x : x - y;
    });
    blocks.forEach(function (block) {
      table.appendChild(block);
      // mark the rows that decided the order (a matrix's chosen training)
      Array.prototype.forEach.call(block.rows, function (row) {
        row.classList.toggle("decides", !!training && row.getAttribute("data-training") === training);
      });
    });
    table.querySelectorAll("th[data-col]").forEach(function (th) {
      th.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.setAttribute("data-sorted", index + ":" + (descending ? "desc" : "asc"));
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-col]").forEach(function (th) {
      th.tabIndex = 0; // reachable with the keyboard; Enter or Space sorts
      th.addEventListener("click", function () {
        // numbers: best first on the first click; names: A to Z
        var descending = th.getAttribute("aria-sort")
          ? th.getAttribute("aria-sort") === "ascending"
          : th.getAttribute("data-kind") !== "label";
        sortTable(table, th.getAttribute("data-col"), descending);
      });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          th.click();
        }
      });
    });
    var select = document.getElementById(table.id + "-training");
    if (select) {
      select.addEventListener("change", function () {
        var sorted = table.getAttribute("data-sorted");
        if (sorted) {
          var parts = sorted.split(":");
          sortTable(table, parts[0], parts[1] === "desc");
        }
      });
    }
  });

  var wanted = /^#sort=([A-Za-z0-9_-]+):([0-9]+):(asc|desc)(?::(.+))?$/.exec(window.location.hash);
  if (wanted) {
    var table = document.getElementById(wanted[1]);
    var select = document.getElementById(wanted[1] + "-training");
    if (select && wanted[4]) {
      select.value = decodeURIComponent(wanted[4]); // an unknown training leaves the select empty
    }
    if (table && table.classList.contains("sortable")) {
      sortTable(table, wanted[2], wanted[3] === "desc");
    }
  }
})();
