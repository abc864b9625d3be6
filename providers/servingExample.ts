/** Keeps one row of a dataframe_split, dataframe_records, instances or inputs payload. */
export function firstRow(body: Record<string, unknown>): Record<string, unknown> {
  const split = body.dataframe_split as { data?: unknown[] } | undefined;
  if (split && Array.isArray(split.data)) {
    return { ...body, dataframe_split: { ...split, data: split.data.slice(0, 1) } };
  }
  for (const key of ["dataframe_records", "instances", "inputs"]) {
    if (Array.isArray(body[key])) {
      return { ...body, [key]: (body[key] as unknown[]).slice(0, 1) };
    }
  }
  return body;
}
