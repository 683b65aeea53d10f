export function Options() {
  return (
    <main class="options">
      <h1>Switchyard options</h1>
      <p>
        Upstreams, routes and rules live in the native host's config. Their settings arrive here with the
        native host.
      </p>
    </main>
  );
}
