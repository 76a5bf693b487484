import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { App } from "./app";
import { applyTheme } from "./theme";
import { report } from "./ui/notify";

applyTheme();
window.addEventListener("unhandledrejection", (event) => {
  // Shown to the person, and still logged: a rejection nobody handled is a bug to see.
  report(event.reason);
});

const root = document.getElementById("app");
if (root) new App(root).start();
