// Sends the chosen file as the raw body of POST /api/v1/imports (streamed to disk by
// the server), then opens the mapping page of the new import.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("import-upload");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.querySelector("input[type=file]").files[0];
    const error = document.getElementById("import-error");
    const sending = document.getElementById("import-sending");
    if (!file) return;
    const query = new URLSearchParams({
      object_type: form.object_type.value,
      file_name: file.name,
    });
    if (form.encoding.value) query.set("encoding", form.encoding.value);
    const token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"];
    error.hidden = true;
    sending.hidden = false;
    const response = await fetch(`/api/v1/imports?${query}`, {
      method: "POST",
      body: file,
      headers: { "X-CSRF-Token": token, "Content-Type": "application/octet-stream" },
      credentials: "same-origin",
    });
    sending.hidden = true;
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      error.textContent = body.detail || `${response.status}`;
      error.hidden = false;
      return;
    }
    window.location = `/t/${form.dataset.slug}/imports/${body.import.id}`;
  });
});
