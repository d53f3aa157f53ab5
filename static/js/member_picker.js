/* The Members tab's picker (Tom Select, vendored): a search over the people and groups the reader
 * may see, asked of the server as you type (`data-choices-url`, ?q=...), in two groups, Users and
 * Groups, a person's full name beside their user name. A name that is not listed can still be
 * given as typed, as a user or as a group (a directory group may be granted before anyone of it
 * signs in): the two "as typed" entries follow what is typed and show only for exactly that. The
 * chosen entry is sent as "user:<name>" or "group:<name>"; a refused one comes back selected, as
 * typed, with the server's error under it. */
(function () {
  "use strict";

  const KINDS = ["user", "group"];

  function typedEntries(picker, text) {
    const name = text.trim();
    // Entries as typed for an earlier text go (unless chosen); those for this text come.
    for (const [value, option] of Object.entries(picker.options)) {
      if (option.typed && option.name !== name && !picker.items.includes(value)) picker.removeOption(value);
    }
    if (!name) return;
    for (const kind of KINDS) {
      const value = `${kind}:${name}`;
      if (!picker.options[value]) picker.addOption({ value, kind, name, full_name: "", typed: true });
    }
  }

  function kindBadge(data) {
    return data.kind === "group" ? '<span class="badge">group</span> ' : "";
  }

  function enhance(select) {
    if (select.tomselect) return;
    const url = select.dataset.choicesUrl;
    // A refused name: the page comes back at its top; show the form with its error.
    if (select.getAttribute("aria-invalid") === "true") select.form.scrollIntoView({ block: "center" });
    new TomSelect(select, {
      valueField: "value",
      labelField: "name",
      searchField: ["name", "full_name"],
      optgroupField: "kind",
      optgroups: [
        { value: "user", label: "Users" },
        { value: "group", label: "Groups" },
      ],
      lockOptgroupOrder: true,
      maxItems: 1,
      dataAttr: "data", // the entry the page starts with: its data-data (dataset.data) is JSON
      maxOptions: 60,
      preload: "focus",
      loadThrottle: 200,
      closeAfterSelect: true,
      highlight: false, // it would mark the letters of "user" and "group" in the entries as typed
      // Listed entries first; an entry as typed last in its group.
      score(search) {
        const listed = this.getScoreFunction(search);
        return (option) => (option.typed ? 0.001 : listed(option));
      },
      load(query, callback) {
        fetch(`${url}?q=${encodeURIComponent(query)}`, { headers: { Accept: "application/json" } })
          .then((response) => (response.ok ? response.json() : { results: [] }))
          .then((answer) => {
            // A listed entry takes the place of the same name as typed.
            for (const entry of answer.results) {
              if (this.options[entry.value] && this.options[entry.value].typed) this.updateOption(entry.value, entry);
            }
            callback(answer.results);
          })
          .catch(() => callback());
      },
      onType(text) {
        typedEntries(this, text);
        this.refreshOptions(true);
      },
      render: {
        option(data, escape) {
          if (data.typed) {
            const what = data.kind === "group" ? "group" : "user";
            return `<div class="typed">${what} “${escape(data.name)}” <small>as typed</small></div>`;
          }
          const full = data.full_name ? ` <small>${escape(data.full_name)}</small>` : "";
          return `<div>${escape(data.name)}${full}</div>`;
        },
        item(data, escape) {
          return `<div>${kindBadge(data)}${escape(data.name)}</div>`;
        },
        no_results() {
          return '<div class="no-results">Nobody you can see has that name: type it whole to give it as typed.</div>';
        },
      },
    });
  }

  htmx.onLoad((root) => {
    const pickers = root.matches && root.matches("select[data-member-picker]") ? [root] : [];
    pickers.push(...root.querySelectorAll("select[data-member-picker]"));
    pickers.forEach(enhance);
  });
})();
