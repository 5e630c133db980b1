/* ib-audit report: builds the rows on screen from the data in #ib-audit-data.
 *
 * The data (reports/html.py) is columns of numbers that index a front-coded string table.
 * Lists keep their full height with two spacers and create only the rows near the
 * viewport, so 100,000 findings cost the DOM a few dozen rows. Everything the data holds
 * reaches the page through textContent and setAttribute, never as markup.
 */
(function () {
  "use strict";
  var marks = window.performance && performance.mark ? performance : {mark: function () {}};
  marks.mark("ib-audit-start"); // the page is parsed; what follows is this script's own time
  var node = document.getElementById("ib-audit-data");
  if (!node || !window.Map || !window.Int32Array) { return; }
  var D = JSON.parse(node.textContent);
  var S = decodeStrings(D.strings);
  marks.mark("ib-audit-data");
  var F = D.findings;
  var T = D.targets;
  var N = F.sev.length;
  var RULES = D.rules;
  var SEVERITY = D.severities; // rank -> label
  var PRINT_LIMIT = 2000; // rows per list a print shows; filters choose which
  var OVERSCAN = 600; // px of rows kept beyond each edge of the viewport
  var MAX_ROWS = 500; // rows of one list in the DOM, whatever the estimate says

  /* "text", or a number n and then "rest": the string is the previous one's first n
     UTF-16 code units followed by rest. */
  function decodeStrings(list) {
    var out = new Array(list.length), count = 0, previous = "", i, x;
    for (i = 0; i < list.length; i++) {
      x = list[i];
      if (typeof x === "number") { i += 1; x = previous.slice(0, x) + list[i]; }
      out[count++] = x;
      previous = x;
    }
    out.length = count;
    return out;
  }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) { e.className = className; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var child = arguments[i];
      parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return parent;
  }

  /* ---- findings ---------------------------------------------------------------------- */

  function severity(i) { return SEVERITY[F.sev[i]]; }
  function ruleId(i) { return RULES[F.rule[i]].id; }
  function resource(i) { return S[T.name[F.tgt[i]]]; }
  function where(i) { var file = S[F.file[i]]; return F.line[i] ? file + ":" + F.line[i] + ":" + F.col[i] : file; }

  function findingRow(i, open) {
    var sev = severity(i), rule = ruleId(i);
    var tr = el("tr", "finding");
    tr.id = "f-" + F.fp[i];
    tr.setAttribute("data-severity", sev);
    tr.setAttribute("data-rank", String(F.sev[i]));
    tr.setAttribute("data-rule", rule);
    tr.setAttribute("data-index", String(i));
    add(tr, el("td", "sev sev-" + sev, sev));
    add(tr, add(el("td"), el("code", "", rule), el("br"), el("span", "count", RULES[F.rule[i]].slug)));
    add(tr, el("td", "", resource(i)));
    add(tr, el("td", "loc", where(i)));
    var details = el("details");
    add(details, el("summary", "", S[F.msg[i]]));
    add(tr, add(el("td"), details));
    if (open) { fillDetails(details, i); details.open = true; }
    return tr;
  }

  /* What an expanded row shows, built when it is first opened. */
  function fillDetails(details, i) {
    if (details.childNodes.length > 1) { return; }
    var rule = ruleId(i), anchor = "f-" + F.fp[i];
    var why = el("a", "", "why and how to fix (" + rule + ")");
    why.setAttribute("href", "#rule-" + rule);
    var link = el("a", "", "link");
    link.setAttribute("href", "#" + anchor);
    link.setAttribute("title", "a link to this finding that survives edits of the file");
    add(details, add(el("p", "count"), "Path ", el("code", "", S[F.path[i]] || "/"), " \u00b7 ", why, " \u00b7 ", link));
    var slot = el("div", "help-slot");
    var help = document.querySelector("#rule-" + (window.CSS && CSS.escape ? CSS.escape(rule) : rule) + " .help");
    if (help) { slot.appendChild(help.cloneNode(true)); }
    add(details, slot);
    var snip = F.snip[i];
    if (!snip) { return; }
    var first = snip[0], from = 1, hitFirst = -1, hitLast = -1;
    if (first > 0) { hitFirst = snip[1]; hitLast = snip[2]; from = 3; }
    if (first === -1) { add(details, el("p", "count", "member missing; showing the object that lacks it")); }
    var pre = el("pre", "snippet");
    pre.setAttribute("aria-label", "Offending configuration");
    for (var k = from; k < snip.length; k++) {
      var line = k - from;
      var hit = first > 0 ? line >= hitFirst && line <= hitLast : first === 0;
      var span = el("span", hit ? "hit" : "");
      if (first > 0) { add(span, el("i", "", String(first + line))); }
      add(pre, add(span, S[snip[k]]));
    }
    if (snip.length > from) { add(details, pre); }
  }

  function suppressedRow(i) {
    var sev = severity(i), pair = D.suppressions[F.sup[i] - 1];
    var tr = el("tr", "suppressed");
    tr.id = "f-" + F.fp[i];
    tr.setAttribute("data-index", String(i));
    add(tr, el("td", "sev sev-" + sev, sev), add(el("td"), el("code", "", ruleId(i))), el("td", "", resource(i)),
      el("td", "loc", where(i)), el("td", "", S[F.msg[i]]), el("td", "", S[pair[0]] + ": " + S[pair[1]]));
    return tr;
  }

  /* ---- configurations and unverified checks ---------------------------------------- */

  var LISTED = T.label.length; // targets after these only name findings of a merged report
  var perTarget = new Int32Array(LISTED * 5);
  for (var f = 0; f < N; f++) {
    if (!F.sup[f] && F.tgt[f] < LISTED) { perTarget[F.tgt[f] * 5 + F.sev[f]] += 1; }
  }

  /* A cell's branches, [when, public, value...] each: one line per value, saying when it holds. */
  function names(b) { return b.slice(2).map(function (s) { return S[s]; }); }
  function branches(td, list, fill) {
    list.forEach(function (b) {
      var div = el("div", "branch");
      fill(div, b);
      add(td, add(div, " (" + S[b[0]] + ")"));
    });
  }

  function resourceGroup(t) {
    var body = el("tbody");
    body.setAttribute("data-index", String(t));
    var shares = T.sharing[t], rows = Math.max(1, shares.length / 2), span = D.has_context ? 6 : 5;
    for (var r = 0; r < rows; r++) {
      var tr = el("tr");
      if (r === 0) {
        var th = add(el("th", "", S[T.name[t]]), el("br"), el("span", "count", S[T.label[t]]));
        th.setAttribute("scope", "rowgroup");
        th.setAttribute("rowspan", String(rows));
        var parts = [];
        for (var rank = 4; rank >= 0; rank--) {
          var n = perTarget[t * 5 + rank];
          if (n) { parts.push(el("span", "sev sev-" + SEVERITY[rank], n + " " + SEVERITY[rank])); }
        }
        if (parts.length) {
          add(th, el("br"));
          parts.forEach(function (p, k) { add(th, p); if (k < parts.length - 1) { add(th, ", "); } });
        }
        var account = el("td", "", S[T.account[t]]);
        account.setAttribute("rowspan", String(rows));
        add(tr, th, account);
      }
      if (T.error[t] !== -1 || !shares.length) {
        var td = T.error[t] !== -1
          ? add(el("td", "sev-high"), el("strong", "", "Not audited:"), " " + S[T.error[t]])
          : el("td", "count", "no distributions");
        td.setAttribute("colspan", String(span));
        add(tr, td);
      } else {
        var shape = D.shapes[shares[r * 2]], key = S[shares[r * 2 + 1]];
        var split = shape[6] || [[], [], []]; // the values of each cell a template's scenarios disagree on
        var launch = el("td"), copies = el("td"), encryption = el("td");
        if (split[0].length) {
          branches(launch, split[0], function (div, b) {
            if (b[1]) { add(div, el("span", "public", "PUBLIC: ")); }
            add(div, names(b).join(", "));
          });
        } else {
          if (shape[2]) { add(launch, el("span", "public", "PUBLIC: ")); }
          add(launch, shape[3].map(function (s) { return S[s]; }).join(", "));
        }
        if (split[1].length) {
          branches(copies, split[1], function (div, b) { add(div, names(b).join(", ") || "none"); });
        } else {
          add(copies, shape[4].map(function (s) { return S[s]; }).join(", ") || "none");
        }
        if (split[2].length) {
          branches(encryption, split[2], function (div, b) { add(div, el("code", "", names(b)[0])); });
        } else {
          add(encryption, el("code", "", key));
        }
        add(tr, el("td", "", S[shape[0]]), el("td", "kind", S[shape[1]]), launch, copies, encryption);
        if (D.has_context) {
          var facts = el("td", "facts"), noted = shape[5];
          for (var k = 0; k < noted.length; k += 2) {
            add(facts, add(el("div"), el("strong", "", S[noted[k]] + ":"), " " + S[noted[k + 1]]));
          }
          if (!noted.length) { add(facts, el("span", "count", "none checked")); }
          add(tr, facts);
        }
      }
      add(body, tr);
    }
    return body;
  }

  /* One cause (rule and reason): a line of its own when it concerns one configuration,
     else the configurations it concerns in a <details> (at most the first 50; the JSON
     report lists each). */
  var openGroups = new Set();
  function unverifiedItem(u) {
    var x = D.unverified[u], rule = el("code", "", S[x[0]]), reason = S[x[1]], more = x[3];
    if (x.length === 6 && !more) {
      return add(el("li"), rule, " " + S[x[4]] + " ", el("code", "", S[x[5]]), ": " + reason);
    }
    var list = el("ul");
    for (var k = 4; k < x.length; k += 2) { add(list, add(el("li"), S[x[k]] + " ", el("code", "", S[x[k + 1]]))); }
    if (more) { add(list, el("li", "", "and " + more + " more (the JSON report lists each)")); }
    var details = add(el("details"), el("summary", "", x[2] + " configuration(s)"), list);
    details.setAttribute("data-group", String(u));
    if (openGroups.has(u)) { details.open = true; }
    return add(el("li"), rule, " " + reason, details);
  }

  /* ---- a list that renders only what is near the viewport --------------------------- */

  var lists = [];

  function VirtualList(host, options) {
    this.host = host;
    this.render = options.render;
    this.spacer = options.spacer;
    this.estimate = options.estimate;
    this.measured = 0;
    this.measuredSum = 0;
    this.heights = new Float64Array(options.size); // 0: not measured yet
    this.items = new Int32Array(0);
    this.offsets = null;
    this.nodes = new Map();
    this.from = 0;
    this.to = 0;
    this.printing = false;
    this.pin = null; // an item whose row keeps its place on screen while rows around it are built
    this.top = options.spacer();
    this.bottom = options.spacer();
    host.insertBefore(this.top, options.before || null);
    host.insertBefore(this.bottom, options.before || null);
    lists.push(this);
  }

  VirtualList.prototype.setItems = function (items) {
    this.nodes.forEach(function (n) { n.remove(); });
    this.nodes.clear();
    this.items = items;
    this.pin = null;
    this.offsets = null;
    this.from = this.to = 0;
    this.update();
  };

  VirtualList.prototype.layout = function () {
    var n = this.items.length, off = new Float64Array(n + 1), h = this.heights, items = this.items;
    var guess = this.measured ? this.measuredSum / this.measured : this.estimate;
    for (var p = 0; p < n; p++) { off[p + 1] = off[p] + (h[items[p]] || guess); }
    this.offsets = off;
  };

  /* The position whose row covers y (px from the top of the list). */
  VirtualList.prototype.positionAt = function (y) {
    var off = this.offsets, low = 0, high = this.items.length - 1;
    while (low < high) {
      var middle = (low + high + 1) >> 1;
      if (off[middle] <= y) { low = middle; } else { high = middle - 1; }
    }
    return low;
  };

  VirtualList.prototype.shown = function () { return this.host.getClientRects().length > 0; };

  function setHeight(spacer, px) {
    var cell = spacer.firstElementChild || spacer;
    if (spacer.tagName === "TBODY") { cell = spacer.firstElementChild.firstElementChild; }
    cell.style.height = Math.max(0, px) + "px";
  }

  /* One pass: render the rows around the viewport, measure them, keep what the reader
     is looking at where it was. Returns whether the rendered range changed. */
  VirtualList.prototype.pass = function () {
    if (this.printing || !this.shown()) { return false; }
    if (!this.offsets) { this.layout(); }
    var n = this.items.length, off = this.offsets, items = this.items, nodes = this.nodes, p, item, el_;
    var origin = this.top.getBoundingClientRect().top;
    var a = 0, b = 0;
    if (n) {
      a = this.positionAt(Math.max(0, -origin - OVERSCAN));
      b = Math.min(n, this.positionAt(Math.max(0, -origin + window.innerHeight + OVERSCAN)) + 1);
      if (b - a > MAX_ROWS) { b = a + MAX_ROWS; }
    }
    if (a === this.from && b === this.to && nodes.size === b - a) { return false; }
    var anchor = null, anchorTop = 0;
    // The row a link asked for stays where follow() put it; else the first row in view does.
    var pinned = this.pin === null ? null : nodes.get(this.pin);
    if (pinned) { anchor = pinned; anchorTop = pinned.getBoundingClientRect().top; }
    for (p = Math.max(a, this.from); !anchor && p < Math.min(b, this.to); p++) {
      var rect = nodes.get(items[p]).getBoundingClientRect();
      if (rect.bottom > 0) { anchor = nodes.get(items[p]); anchorTop = rect.top; break; }
    }
    for (p = this.from; p < this.to; p++) {
      if (p < a || p >= b) { item = items[p]; el_ = nodes.get(item); if (el_) { el_.remove(); nodes.delete(item); } }
    }
    var next = this.top.nextSibling;
    for (p = a; p < b; p++) {
      item = items[p];
      el_ = nodes.get(item);
      if (!el_) {
        el_ = this.render(item, p);
        nodes.set(item, el_);
        this.host.insertBefore(el_, next);
      } else if (el_ === next) {
        next = next.nextSibling;
      } else {
        this.host.insertBefore(el_, next);
      }
    }
    this.from = a;
    this.to = b;
    setHeight(this.top, off[a]);
    setHeight(this.bottom, off[n] - off[b]);
    this.measure();
    if (anchor && anchor.isConnected) {
      var moved = anchor.getBoundingClientRect().top - anchorTop;
      if (Math.abs(moved) >= 1) { window.scrollBy(0, moved); }
    }
    return true;
  };

  /* Record the heights of the rendered rows; when they differ from what was assumed,
     lay the list out again. */
  VirtualList.prototype.measure = function () {
    if (this.printing) { return false; }
    var changed = false, h = this.heights, items = this.items;
    for (var p = this.from; p < this.to; p++) {
      var item = items[p], height = this.nodes.get(item).getBoundingClientRect().height;
      if (height && Math.abs(height - h[item]) >= 0.5) {
        if (!h[item]) { this.measured += 1; this.measuredSum += height; } else { this.measuredSum += height - h[item]; }
        h[item] = height;
        changed = true;
      }
    }
    if (changed) {
      this.layout();
      var n = items.length;
      setHeight(this.top, this.offsets[this.from]);
      setHeight(this.bottom, this.offsets[n] - this.offsets[this.to]);
    }
    return changed;
  };

  VirtualList.prototype.update = function () {
    for (var k = 0; k < 4 && this.pass(); k++) { /* until the viewport is covered */ }
  };

  /* Scroll so that an item is on screen, render it, and return its row. */
  VirtualList.prototype.reveal = function (item) {
    var p = this.items.indexOf(item);
    if (p < 0 || !this.shown()) { return null; }
    // Rows not measured yet sit where the estimate puts them: each pass measures the rows
    // around the guess, which moves the guess closer.
    for (var attempt = 0; attempt < 8 && !this.nodes.get(item); attempt++) {
      if (!this.offsets) { this.layout(); }
      var origin = this.top.getBoundingClientRect().top + window.scrollY;
      window.scrollTo(0, origin + this.offsets[p] - window.innerHeight / 3);
      this.update();
    }
    var row = this.nodes.get(item);
    if (row) { row.scrollIntoView({block: "center"}); this.update(); }
    return this.nodes.get(item) || null;
  };

  /* Printing shows rows, not a viewport: render the first PRINT_LIMIT in full. */
  VirtualList.prototype.printAll = function (note, what) {
    this.printing = true;
    this.nodes.forEach(function (n) { n.remove(); });
    this.nodes.clear();
    var items = this.items, count = Math.min(items.length, PRINT_LIMIT), fragment = document.createDocumentFragment();
    for (var p = 0; p < count; p++) { fragment.appendChild(this.render(items[p], p, true)); }
    this.host.insertBefore(fragment, this.bottom);
    setHeight(this.top, 0);
    setHeight(this.bottom, 0);
    if (note) {
      note.textContent = items.length > count
        ? "Printed the first " + count + " of " + items.length + " " + what + "; filter them to print others." : "";
    }
  };

  VirtualList.prototype.endPrint = function () {
    if (!this.printing) { return; }
    this.printing = false;
    var fragmentRows = [];
    for (var n = this.top.nextSibling; n && n !== this.bottom; n = n.nextSibling) { fragmentRows.push(n); }
    fragmentRows.forEach(function (n) { n.remove(); });
    this.setItems(this.items);
  };

  function rowSpacer(columns) {
    return function () {
      var tr = el("tr", "spacer"), td = el("td");
      tr.setAttribute("aria-hidden", "true");
      td.setAttribute("colspan", String(columns));
      return add(tr, td);
    };
  }

  function bodySpacer(columns) {
    var row = rowSpacer(columns);
    return function () { return add(el("tbody", "spacer"), row()); };
  }

  function itemSpacer() {
    var li = el("li", "spacer");
    li.setAttribute("aria-hidden", "true");
    return li;
  }

  function range(n) {
    var out = new Int32Array(n);
    for (var i = 0; i < n; i++) { out[i] = i; }
    return out;
  }

  var scheduled = false;
  function schedule() {
    if (scheduled) { return; }
    scheduled = true;
    window.requestAnimationFrame(function () {
      scheduled = false;
      lists.forEach(function (l) { l.update(); });
    });
  }

  /* ---- the findings table: filters, search, sort ------------------------------------ */

  var table = document.getElementById("findings-table");
  var controls = document.getElementById("controls");
  var findings = null, active = [], suppressedItems = [];
  for (var i = 0; i < N; i++) { (F.sup[i] ? suppressedItems : active).push(i); }
  var base = Int32Array.from(active); // the current sort
  var openRows = new Set();

  if (table) {
    var body = table.tBodies[0];
    findings = new VirtualList(body, {
      size: N,
      estimate: 48,
      spacer: rowSpacer(5),
      render: function (item, position, printing) {
        var row = findingRow(item, printing || openRows.has(item));
        row.setAttribute("aria-rowindex", String(position + 2));
        return row;
      }
    });
    body.addEventListener("click", function (event) {
      var summary = event.target.closest("summary");
      var row = summary && summary.closest("tr.finding");
      if (row) { fillDetails(summary.parentNode, Number(row.getAttribute("data-index"))); }
    });
    body.addEventListener("toggle", function (event) {
      var details = event.target, row = details.closest && details.closest("tr.finding");
      if (!row) { return; }
      var item = Number(row.getAttribute("data-index"));
      if (details.open) { fillDetails(details, item); openRows.add(item); } else { openRows.delete(item); }
      findings.measure();
      schedule();
    }, true);
  }

  var boxes = controls ? Array.prototype.slice.call(controls.querySelectorAll("input[name=severity]")) : [];
  var ruleFilter = document.getElementById("rule-filter");
  var controlFilter = document.getElementById("control-filter");
  var search = document.getElementById("text-filter");
  var shown = document.getElementById("shown");
  var rankOf = {};
  Object.keys(SEVERITY).forEach(function (rank) { rankOf[SEVERITY[rank]] = Number(rank); });
  var ruleIndex = {};
  RULES.forEach(function (r, k) { ruleIndex[r.id] = k; });

  /* Search. A finding's searchable text is its severity, rule id and slug, resource,
     location, path and message; a needle comes from a one-line input, so it never spans
     two of them. Most of those strings repeat (rule ids, files, messages, resource names),
     so a search looks for the needle in the string table, each distinct string once, and
     then tests each finding by the string ids it holds: no text is built per finding.
     The strings those fields hold are one run of the table (D.searchable: from, to), and
     are searched as one lower-case text, a line per string, made on the first search:
     one join and one toLowerCase, which costs less than lowering each string. */
  var FIRST = D.searchable[0], lowerText = null, starts = null; // string FIRST + k starts at starts[k]
  function searchText() {
    if (lowerText !== null) { return; }
    var own = S.slice(FIRST, D.searchable[1]), text = own.join("\n"), lower = text.toLowerCase(), pieces = own;
    var k, at = 0;
    // Lowering keeps every string's length but for one letter (U+0130 becomes two code
    // units): if the text grew, lower the strings one by one so that the offsets hold.
    if (lower.length !== text.length) {
      pieces = own.map(function (x) { return x.toLowerCase(); });
      lower = pieces.join("\n");
    }
    starts = new Int32Array(pieces.length + 1);
    for (k = 0; k < pieces.length; k++) { starts[k] = at; at += pieces[k].length + 1; }
    starts[pieces.length] = at;
    lowerText = lower;
  }

  /* Whether the lower-case needle is in finding i's searchable text, as a function of i. */
  function matcher(needle) {
    searchText();
    var hit = new Uint8Array(S.length), ranks = new Uint8Array(5), rules = new Uint8Array(RULES.length), k = 0, at;
    for (at = lowerText.indexOf(needle); at !== -1; at = lowerText.indexOf(needle, starts[k + 1])) {
      while (starts[k + 1] <= at) { k++; }
      hit[FIRST + k] = 1; // and on to the next string: one match per string is enough
    }
    for (k = 0; k < 5; k++) { ranks[k] = SEVERITY[k].toLowerCase().indexOf(needle) !== -1 ? 1 : 0; }
    RULES.forEach(function (r, k) {
      rules[k] = r.id.toLowerCase().indexOf(needle) !== -1 || r.slug.toLowerCase().indexOf(needle) !== -1 ? 1 : 0;
    });
    var located = locationMatcher(needle);
    var file = F.file, path = F.path, msg = F.msg, name = T.name, tgt = F.tgt, sev = F.sev, rule = F.rule;
    return function (i) {
      if (ranks[sev[i]] || rules[rule[i]] || hit[file[i]] || hit[msg[i]] || hit[path[i]] || hit[name[tgt[i]]]) {
        return true;
      }
      return located !== null && located[i] === 1;
    };
  }

  /* A location with a line reads "file:L:C". A needle found there but not in the file
     either covers the colon after the file (the needle's part before that colon ends the
     file, the part from it starts ":L:C") or lies within "L:C". The numbers' part is a
     search of one text that holds every finding's "L:C", a line each, made on the first
     search that needs it; the file's part is decided once per file. Returns, per finding,
     1 where the needle is in its location but not its file (when there is such a needle). */
  var numbersText = null, numbersStart = null; // "\nL:C" per finding; where finding i's starts
  function locationMatcher(needle) {
    var digitsOnly = /^[0-9]*$/, whole = needle.split(":"), ends = [], wanted = [], j, k;
    for (j = needle.indexOf(":"); j !== -1; j = needle.indexOf(":", j + 1)) {
      var rest = needle.slice(j + 1).split(":"); // ":L" or ":L:C" after the file: at most two such colons
      if (rest.length <= 2 && rest.every(function (part) { return digitsOnly.test(part); })) {
        ends.push(needle.slice(0, j));
        wanted.push("\n" + rest.join(":")); // what "L:C" starts with
      }
    }
    var inNumbers = whole.length <= 2 && whole.every(function (part) { return digitsOnly.test(part); });
    if (!ends.length && !inNumbers) { return null; }
    if (numbersText === null) {
      var parts = new Array(N), at = 0;
      numbersStart = new Int32Array(N + 1);
      for (k = 0; k < N; k++) {
        parts[k] = F.line[k] ? F.line[k] + ":" + F.col[k] : "";
        numbersStart[k] = at;
        at += parts[k].length + 1;
      }
      numbersStart[N] = at;
      numbersText = "\n" + parts.join("\n");
    }
    // Bits per finding: 1 << k, its "L:C" starts as the needle's k-th way to cover the
    // colon after the file needs (k < 2); 4, its "L:C" holds the needle.
    var rows = new Uint8Array(N), files = new Uint8Array(S.length), i;
    function mark(text, bit) { // finding i's line starts at numbersStart[i] (its "\n") in numbersText
      var row = 0, from = 0, found;
      while ((found = numbersText.indexOf(text, from)) !== -1) {
        while (numbersStart[row + 1] <= found) { row++; }
        rows[row] |= bit;
        from = numbersStart[row + 1];
      }
    }
    wanted.forEach(function (text, k) { mark(text, 1 << k); });
    if (inNumbers) { mark(needle, 4); }
    for (i = 0; i < N; i++) {
      if (!rows[i]) { continue; }
      var file = F.file[i], bits = files[file];
      if (!bits) {
        var name = lowerText.slice(starts[file - FIRST], starts[file - FIRST + 1] - 1);
        bits = 8 | (inNumbers ? 4 : 0);
        ends.forEach(function (end, k) { if (name.endsWith(end)) { bits |= 1 << k; } });
        files[file] = bits;
      }
      rows[i] = F.line[i] && (bits & rows[i] & 7) ? 1 : 0;
    }
    return rows;
  }

  function apply() {
    var wanted = [false, false, false, false, false];
    boxes.forEach(function (b) { wanted[rankOf[b.value]] = b.checked; });
    var needle = search.value.trim().toLowerCase();
    var rule = ruleFilter.value ? ruleIndex[ruleFilter.value] : -1;
    var inControl = null;
    if (controlFilter && controlFilter.value) {
      inControl = new Uint8Array(RULES.length);
      (D.control_rules[controlFilter.value] || []).forEach(function (id) {
        if (id in ruleIndex) { inControl[ruleIndex[id]] = 1; }
      });
    }
    var matches = needle ? matcher(needle) : null, per = [0, 0, 0, 0, 0];
    var out = new Int32Array(base.length), count = 0;
    for (var k = 0; k < base.length; k++) {
      var i = base[k], r = F.rule[i];
      if ((rule !== -1 && r !== rule) || (inControl && !inControl[r]) || (matches && !matches(i))) {
        continue;
      }
      per[F.sev[i]] += 1;
      if (wanted[F.sev[i]]) { out[count++] = i; }
    }
    boxes.forEach(function (b) {
      controls.querySelector("[data-count-for='" + b.value + "']").textContent = "(" + per[rankOf[b.value]] + ")";
    });
    shown.textContent = "Showing " + count + " of " + D.total + " findings";
    if (!findings) { return; }
    table.setAttribute("aria-rowcount", String(count + 1));
    var top = table.getBoundingClientRect().top;
    if (top < 0) { window.scrollBy(0, top - controls.offsetHeight); } // the first matches, not the middle
    findings.setItems(out.subarray(0, count));
  }

  /* Natural order ("cfg-9" before "cfg-10", case ignored) for a column of string ids,
     as a rank per string id; computed when a sort first needs it. */
  var naturalRanks = {};
  function naturalRank(column, ids) {
    if (naturalRanks[column]) { return naturalRanks[column]; }
    var seen = new Uint8Array(S.length), unique = [];
    ids.forEach(function (s) { if (!seen[s]) { seen[s] = 1; unique.push(s); } });
    var keys = {};
    unique.forEach(function (s) {
      keys[s] = S[s].toLowerCase().replace(/\d+/g, function (d) {
        d = d.replace(/^0+(?=\d)/, "");
        return String.fromCharCode(0x30 + Math.min(d.length, 0xffc0)) + d;
      });
    });
    unique.sort(function (x, y) { return keys[x] < keys[y] ? -1 : keys[x] > keys[y] ? 1 : x - y; });
    var rank = new Int32Array(S.length);
    unique.forEach(function (s, k) { rank[s] = k; });
    naturalRanks[column] = rank;
    return rank;
  }

  var direction = {};
  function sortBy(key) {
    var dir = direction[key] = -(direction[key] || (key === "rank" ? 1 : -1));
    var compare;
    if (key === "rank") {
      compare = function (x, y) { return dir * (F.sev[x] - F.sev[y]) || x - y; };
    } else if (key === "rule") {
      compare = function (x, y) { return dir * (F.rule[x] - F.rule[y]) || x - y; };
    } else if (key === "resource") {
      var names = naturalRank("name", T.name);
      compare = function (x, y) { return dir * (names[T.name[F.tgt[x]]] - names[T.name[F.tgt[y]]]) || x - y; };
    } else {
      var files = naturalRank("file", F.file);
      compare = function (x, y) {
        return dir * (files[F.file[x]] - files[F.file[y]] || F.line[x] - F.line[y] || F.col[x] - F.col[y]) || x - y;
      };
    }
    base = Int32Array.from(active).sort(compare);
    Array.prototype.forEach.call(table.tHead.querySelectorAll("th"), function (th) {
      if (th.hasAttribute("aria-sort")) { th.setAttribute("aria-sort", "none"); }
    });
    return dir;
  }

  /* ---- the other lists ------------------------------------------------------------- */

  var suppressedTable = document.getElementById("suppressed-table");
  var suppressedList = null;
  if (suppressedTable) {
    var sbody = suppressedTable.tBodies[0];
    suppressedList = new VirtualList(sbody, {size: N, estimate: 40, spacer: rowSpacer(6), render: suppressedRow});
  }

  var resourcesTable = document.getElementById("resources-table");
  var resourceList = null;
  if (resourcesTable) {
    resourceList = new VirtualList(resourcesTable, {
      size: LISTED, estimate: 90, spacer: bodySpacer(D.has_context ? 8 : 7), render: resourceGroup
    });
  }

  var unverifiedNode = document.getElementById("unverified-list");
  var unverifiedList = null;
  if (unverifiedNode) {
    unverifiedList = new VirtualList(unverifiedNode, {
      size: D.unverified.length, estimate: 24, spacer: itemSpacer, render: unverifiedItem
    });
  }

  /* ---- links to a finding: #f-<fingerprint> ---------------------------------------- */

  var targeted = null;
  function follow() {
    var hash = window.location.hash;
    if (hash.indexOf("#f-") !== 0) { return; }
    var fingerprint = decodeURIComponent(hash.slice(3)), item = F.fp.indexOf(fingerprint), row = null;
    if (item < 0) { return; }
    if (F.sup[item]) {
      var holder = document.getElementById("suppressed-details");
      if (holder) { holder.open = true; }
      row = suppressedList && suppressedList.reveal(item);
    } else if (findings) {
      if (findings.items.indexOf(item) < 0) { // filtered out: show everything again
        boxes.forEach(function (b) { b.checked = true; });
        ruleFilter.value = "";
        if (controlFilter) { controlFilter.value = ""; }
        search.value = "";
        apply();
      }
      openRows.add(item);
      findings.pin = null;
      row = findings.reveal(item);
      var details = row && row.querySelector("details");
      if (details && !details.open) { fillDetails(details, item); details.open = true; }
      // An expanded row is often taller than the window: show its start, below the sticky
      // filters. Rows built above it by the scroll can move it again: align until it stays.
      for (var attempt = 0; row && row.isConnected && attempt < 4; attempt++) {
        findings.measure();
        var off = row.getBoundingClientRect().top - (controls ? controls.getBoundingClientRect().bottom : 0) - 8;
        if (Math.abs(off) < 1) { break; }
        window.scrollBy(0, off);
        findings.update();
      }
      findings.pin = row ? item : null;
    }
    if (targeted) { targeted.classList.remove("targeted"); }
    targeted = row;
    if (row) {
      row.classList.add("targeted");
      var focusable = row.querySelector("summary");
      if (focusable) { focusable.focus({preventScroll: true}); }
    }
  }

  // A link to the finding already in the address bar fires no hashchange: follow it anyway.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[href^='#f-']");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) {
      return;
    }
    if (link.getAttribute("href") === window.location.hash) {
      event.preventDefault();
      follow();
    }
  });

  /* ---- wiring ---------------------------------------------------------------------- */

  function printing(on) {
    [[findings, "findings-print-note", "findings"], [suppressedList, "suppressed-print-note", "suppressed findings"],
      [resourceList, "resources-print-note", "configurations"], [unverifiedList, "unverified-print-note", "checks"]]
      .forEach(function (entry) {
        if (!entry[0]) { return; }
        if (on) { entry[0].printAll(document.getElementById(entry[1]), entry[2]); } else { entry[0].endPrint(); }
      });
    if (on) {
      Array.prototype.forEach.call(document.querySelectorAll("#resources-details, #suppressed-details"), function (d) {
        d.setAttribute("data-was-open", d.open ? "1" : "");
        d.open = true;
      });
    } else {
      Array.prototype.forEach.call(document.querySelectorAll("[data-was-open]"), function (d) {
        d.open = d.getAttribute("data-was-open") === "1";
        d.removeAttribute("data-was-open");
      });
      schedule();
    }
  }

  window.addEventListener("scroll", schedule, {passive: true});
  window.addEventListener("resize", function () {
    lists.forEach(function (l) { l.heights.fill(0); l.measured = l.measuredSum = 0; l.offsets = null; l.from = l.to = 0;
      l.nodes.forEach(function (n) { n.remove(); }); l.nodes.clear(); });
    schedule();
  });
  document.addEventListener("toggle", function (event) {
    var target = event.target;
    if (target.id === "resources-details" || target.id === "suppressed-details") { schedule(); }
    if (unverifiedList && target.hasAttribute && target.hasAttribute("data-group")) {
      var group = Number(target.getAttribute("data-group"));
      if (target.open) { openGroups.add(group); } else { openGroups.delete(group); }
      unverifiedList.measure();
      schedule();
    }
  }, true);
  window.addEventListener("beforeprint", function () { printing(true); });
  window.addEventListener("afterprint", function () { printing(false); });
  if (window.matchMedia) {
    var print = window.matchMedia("print");
    var onPrint = function (event) { printing(event.matches); };
    if (print.addEventListener) { print.addEventListener("change", onPrint); } else if (print.addListener) { print.addListener(onPrint); }
  }
  window.addEventListener("hashchange", follow);

  function filtersHeight() {
    document.documentElement.style.setProperty("--filters-height", controls.offsetHeight + "px");
  }
  if (controls && table) {
    controls.hidden = false;
    window.addEventListener("resize", filtersHeight);
    controls.addEventListener("input", apply);
    controls.addEventListener("change", apply);
    table.tHead.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-sort]");
      if (!button) { return; }
      var dir = sortBy(button.getAttribute("data-sort"));
      button.parentNode.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      apply();
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-waiting]"), function (p) { p.remove(); });
  [document.getElementById("findings"), suppressedTable && suppressedTable.parentNode,
    resourcesTable && resourcesTable.parentNode, unverifiedNode]
    .forEach(function (shownNow) { if (shownNow) { shownNow.hidden = false; } });
  if (controls) { apply(); filtersHeight(); }
  if (suppressedList) { suppressedList.setItems(Int32Array.from(suppressedItems)); }
  if (resourceList) { resourceList.setItems(range(LISTED)); }
  if (unverifiedList) { unverifiedList.setItems(range(D.unverified.length)); }
  document.documentElement.classList.add("js");
  follow();
  window.__ib = {findings: findings, follow: follow};
  marks.mark("ib-audit-ready");
  document.documentElement.setAttribute("data-ready", "");
}());
