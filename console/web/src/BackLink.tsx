import { useApp } from "./App";
import { format, type Route } from "./route";

// BackLink is a link to another page of the console: a real address (open it in a new
// tab, share it) that the console follows without reloading.
export function BackLink({ to, label, testid }: { to: Route; label: string; testid?: string }) {
  const { go } = useApp();
  return (
    <a
      href={format(to)}
      data-testid={testid}
      onClick={(e) => {
        e.preventDefault();
        go(to);
      }}
    >
      {label}
    </a>
  );
}
