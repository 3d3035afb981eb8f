/** A CPU profile of this process through the inspector (no restart, no --cpu-prof): start, then call the result to stop. */
export async function startCpuProfile(): Promise<() => Promise<object>> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result as Record<string, unknown>))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return async () => {
    const { profile } = await post('Profiler.stop');
    session.disconnect();
    return profile as object;
  };
}
