"""The book itself: run the chapters with papermill (re-running only what changed), stage and
render the HTML, the student edition, publishing; and the map of this package (its layers,
cycles and long functions, measured)."""
