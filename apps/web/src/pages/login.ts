import { ApiError, api } from "../api/client";
import type { LoginResponse, User } from "../api/types";
import { h } from "../ui/dom";
import { icon } from "../ui/icons";
import { messageOf } from "../ui/notify";
import type { Page } from "../router";

interface LoginOptions {
  query: URLSearchParams;
  onSignedIn: (user: User, next: string) => void;
}

export function loginPage({ query, onSignedIn }: LoginOptions): Page {
  const email = h("input", {
    id: "login-email",
    name: "email",
    type: "email",
    autocomplete: "username",
    required: true,
    autofocus: true,
    spellcheck: "false",
  });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "button primary wide" }, "Sign in");
  const message = h("div", { class: "form-message", "aria-live": "assertive" });
  if (query.get("expired")) {
    message.append(h("p", { class: "notice", role: "status" }, "Your session has expired. Sign in again to continue."));
  }

  const form = h(
    "form",
    { class: "card login-card", novalidate: true, "aria-labelledby": "login-title" },
    h("div", { class: "login-mark" }, icon("gauge", "icon login-icon")),
    h("h1", { id: "login-title" }, "Sign in"),
    h("p", { class: "muted" }, "Live and recorded telemetry of your vehicles."),
    message,
    h("div", { class: "field" }, h("label", { for: "login-email" }, "Email"), email),
    h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), password),
    submit,
  );

  const showError = (text: string): void => {
    message.replaceChildren(h("p", { class: "error-box", role: "alert" }, text));
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!email.value.trim() || !password.value) {
      showError("Enter your email and password.");
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    api<LoginResponse>("POST", "/api/v1/auth/login", {
      body: { email: email.value.trim(), password: password.value },
      allowUnauthorized: true,
    })
      .then((response) => {
        onSignedIn(response.user, query.get("next") ?? "/");
      })
      .catch((error: unknown) => {
        const text = error instanceof ApiError && error.status === 401 ? "Wrong email or password." : messageOf(error);
        showError(text);
        password.value = "";
        password.focus();
      })
      .finally(() => {
        submit.disabled = false;
        submit.textContent = "Sign in";
      });
  });

  return { title: "Sign in", el: h("section", { class: "login-page" }, form) };
}
