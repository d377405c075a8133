/**
 * GitHub Actions workflow commands (`::error file=…,title=…::message`): when a job runs with
 * GITHUB_ACTIONS=true, each finding becomes an annotation on the run and the pull request.
 */
export interface Finding {
  level: 'error' | 'warning';
  title: string;
  message: string;
  file?: string;
}

// Escaping as the Actions runner decodes it: data escapes %, CR, LF; properties also : and ,.
const escapeData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

export function annotation(f: Finding): string {
  const props = [f.file !== undefined ? `file=${escapeProperty(f.file)}` : '', `title=${escapeProperty(f.title)}`].filter(Boolean).join(',');
  return `::${f.level} ${props}::${escapeData(f.message)}`;
}

export function inGitHubActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}
