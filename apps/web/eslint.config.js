// ESLint for the web UI: typescript-eslint's strict, type-aware rules over src/ (formatting is
// Prettier's, not ESLint's).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "test-results/"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Figures are written into text everywhere ("3 samples"): numbers are fine in templates.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
    },
  },
  {
    files: ["*.config.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
