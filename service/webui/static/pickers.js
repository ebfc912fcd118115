// Files dropped or picked; a folder's files take the folder's name as their label.
export async function filesFromDrop(items) {
  const files = [];
  const walk = async (entry, folder) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      files.push({ file, label: folder });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, entry.name);
      }
    }
  };
  for (const item of items) {
    const entry = item.webkitGetAsEntry?.();
    if (entry) await walk(entry, "");
    else if (item.getAsFile()) files.push({ file: item.getAsFile(), label: "" });
  }
  return files;
}

export function filesFromInput(input) {
  return [...input.files].map((file) => {
    const parts = (file.webkitRelativePath || "").split("/");
    return { file, label: parts.length > 2 ? parts[parts.length - 2] : "" };
  });
}
