// The methods the API takes, from its own OpenAPI document (one declaration: the catalogue).
export async function methodChoices() {
  const document = await fetch("/openapi.json").then((response) => response.json());
  const method = document.components.schemas.CorrectionJson.properties.method;
  return { methods: method.enum, preset: method.default };
}
