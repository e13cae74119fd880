package task

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The benchmark datasets' files as kronfed reads them (docs/data.md), with
// their SHA-256 and where they are published. `client data fetch` downloads
// them into a data folder, verifying every byte; a file whose published form
// differs from the one kronfed reads (ARC's Hugging Face export, HellaSwag's
// lm-eval text) has no URL and comes from a mirror of a data folder.

// DataFile is one file of a dataset.
type DataFile struct {
	Name   string // in the dataset's folder
	SHA256 string
	Size   int64
	// URL is where it is published, "" when only mirrors serve it; Member,
	// when set, is the file's path inside the zip archive at URL.
	URL, Member string
}

// Dataset is a downloadable dataset: its folder name and files.
type Dataset struct {
	Name, Source string
	Files        []DataFile
}

// Catalog lists the datasets `client data fetch` knows, in name order.
var Catalog = []Dataset{
	{Name: "arc-challenge", Source: "AI2 ARC, Hugging Face export (ai2_arc); CC BY-SA 4.0", Files: []DataFile{
		{Name: "ARC-Challenge_train.jsonl", SHA256: "aed9b9678099145c1c7fbc5a3ecb9943f0743c0089e0e85d3e66bad79676b0ea", Size: 397051},
		{Name: "ARC-Challenge_validation.jsonl", SHA256: "c63650471eaf4c5076d9c913b77e42e10878739ec4e9e69d3a5f31210f5775a5", Size: 109266},
	}},
	{Name: "arc-easy", Source: "AI2 ARC, Hugging Face export (ai2_arc); CC BY-SA 4.0", Files: []DataFile{
		{Name: "train.json", SHA256: "87364bb50ba8828f3438e47737519353d121099cc6ce4f21b0785be17690eff3", Size: 1022224},
		{Name: "validation.json", SHA256: "f843b24093de8a09fcca89c29538e76e553221ea905dcd3062d8e53dfc7350f0", Size: 259464},
	}},
	{Name: "hellaswag", Source: "HellaSwag validation in lm-eval-harness text form; MIT", Files: []DataFile{
		{Name: "hellaswag_val_full.txt.bz2", SHA256: "50b637899e4263c2bc456c2dc726c95d2c8cd8e2a552ea5bd7719ce3cb03fe5b", Size: 1964544},
	}},
	{Name: "piqa", Source: "PIQA, the official data page (yonatanbisk.com/piqa); AFL 3.0", Files: []DataFile{
		{Name: "valid.jsonl", SHA256: "93503cc97c679e459b065c3d13e848282e44b2a25213985bed3e5d458abef72d", Size: 495929,
			URL: "https://yonatanbisk.com/piqa/data/valid.jsonl"},
		{Name: "valid-labels.lst", SHA256: "b4192dc3a2a0363d9d60ccf79800cbbe2f32ebb17726efdde6970e0b8131bceb", Size: 3676,
			URL: "https://yonatanbisk.com/piqa/data/valid-labels.lst"},
	}},
	{Name: "self-instruct", Source: "Self-Instruct's 175 seed tasks, as shipped in Stanford Alpaca; Apache-2.0", Files: []DataFile{
		{Name: "seed_tasks.jsonl", SHA256: "7779004fa198fdf27cf70a159363879d8a26c53329e11b436af17b3941875f48", Size: 110934,
			URL: "https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/main/seed_tasks.jsonl"},
	}},
	{Name: "winogrande", Source: "WinoGrande v1.1, the official release archive; CC-BY", Files: []DataFile{
		{Name: "train_xs.jsonl", SHA256: "2f159f8216e54cdf835399ac10ebdd66699ca53934f4fc21a42d222512571dae", Size: 34768,
			URL: winograndeZip, Member: "winogrande_1.1/train_xs.jsonl"},
		{Name: "train_s.jsonl", SHA256: "959778b5a77819891ba9cbfc591925e94c853c6de3019992e292765176c69daf", Size: 138624,
			URL: winograndeZip, Member: "winogrande_1.1/train_s.jsonl"},
		{Name: "train_m.jsonl", SHA256: "b02e7d92b5e44147ee4d1879fbf0e484510053f06c50a6fa6400265058f3ed42", Size: 554107,
			URL: winograndeZip, Member: "winogrande_1.1/train_m.jsonl"},
		{Name: "dev.jsonl", SHA256: "1aeac79cf46a3dcbe59a71ca7e5372a1490cde2b4ae2387dc56f00378104d2e8", Size: 275682,
			URL: winograndeZip, Member: "winogrande_1.1/dev.jsonl"},
	}},
}

const winograndeZip = "https://storage.googleapis.com/ai2-mosaic/public/winogrande/winogrande_1.1.zip"

// FindDataset looks a dataset up by name.
func FindDataset(name string) (Dataset, error) {
	for _, d := range Catalog {
		if d.Name == name {
			return d, nil
		}
	}
	names := make([]string, len(Catalog))
	for i, d := range Catalog {
		names[i] = d.Name
	}
	return Dataset{}, fmt.Errorf("unknown dataset %q (known: %s)", name, strings.Join(names, ", "))
}

// FetchOptions say where files come from.
type FetchOptions struct {
	// Mirror, when set, is the base URL of a copy of a data folder: every
	// file is fetched from Mirror/DATASET/FILE instead of its published URL.
	Mirror string
	Client *http.Client // default http.DefaultClient
	// Log is told what happens to each file (nil: nothing).
	Log func(format string, args ...any)
}

// ErrNoSource says a file has no published URL in the form kronfed reads and
// no mirror was given.
var ErrNoSource = errors.New("not published in the form kronfed reads")

// Fetch downloads dataset d into dir/d.Name, verifying each file's size and
// SHA-256; a file already there with the right digest is kept. A download
// that does not match is deleted and reported, never kept.
func Fetch(ctx context.Context, d Dataset, dir string, opt FetchOptions) error {
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	logf := func(format string, args ...any) {
		if opt.Log != nil {
			opt.Log(format, args...)
		}
	}
	folder := filepath.Join(dir, d.Name)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return err
	}
	archives := map[string]string{} // zip URL → local temporary copy
	defer func() {
		for _, p := range archives {
			os.Remove(p)
		}
	}()
	for _, f := range d.Files {
		dst := filepath.Join(folder, f.Name)
		if sum, err := fileSHA256(dst); err == nil && sum == f.SHA256 {
			logf("%s/%s: up to date", d.Name, f.Name)
			continue
		}
		var err error
		switch {
		case opt.Mirror != "":
			url := strings.TrimRight(opt.Mirror, "/") + "/" + d.Name + "/" + f.Name
			err = download(ctx, opt.Client, url, dst, f)
			logf("%s/%s: from %s", d.Name, f.Name, url)
		case f.URL == "":
			err = fmt.Errorf("%s/%s is %w (%s): fetch it from a copy of a data folder with --mirror URL (docs/data.md)", d.Name, f.Name, ErrNoSource, d.Source)
		case f.Member != "":
			zipPath, ok := archives[f.URL]
			if !ok {
				if zipPath, err = downloadTemp(ctx, opt.Client, f.URL); err != nil {
					break
				}
				archives[f.URL] = zipPath
			}
			err = extract(zipPath, f, dst)
			logf("%s/%s: from %s (%s)", d.Name, f.Name, f.URL, f.Member)
		default:
			err = download(ctx, opt.Client, f.URL, dst, f)
			logf("%s/%s: from %s", d.Name, f.Name, f.URL)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// download fetches url into dst through dst.partial, checking f's size and
// digest; on any failure the partial file is removed.
func download(ctx context.Context, client *http.Client, url, dst string, f DataFile) error {
	body, err := get(ctx, client, url)
	if err != nil {
		return err
	}
	defer body.Close()
	return save(body, dst, f, url)
}

func get(ctx context.Context, client *http.Client, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("download %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// save writes r to dst via dst.partial, verifying f's size and SHA-256.
func save(r io.Reader, dst string, f DataFile, from string) (err error) {
	partial := dst + ".partial"
	out, err := os.Create(partial)
	if err != nil {
		return err
	}
	defer func() {
		out.Close()
		if err != nil {
			os.Remove(partial)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(r, f.Size+1))
	if err != nil {
		return fmt.Errorf("download %s: %w", from, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
		return fmt.Errorf("%s from %s: %d bytes with SHA-256 %s, want %d bytes with %s: the source changed or the download was damaged; nothing was kept",
			filepath.Base(dst), from, n, sum, f.Size, f.SHA256)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(partial, dst)
}

// downloadTemp fetches an archive to a temporary file.
func downloadTemp(ctx context.Context, client *http.Client, url string) (string, error) {
	body, err := get(ctx, client, url)
	if err != nil {
		return "", err
	}
	defer body.Close()
	tmp, err := os.CreateTemp("", "kronfed-fetch-*.zip")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(tmp, body); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	return tmp.Name(), tmp.Close()
}

// extract copies f.Member out of the zip at path into dst, verified.
func extract(path string, f DataFile, dst string) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.URL, err)
	}
	defer zr.Close()
	i := slices.IndexFunc(zr.File, func(z *zip.File) bool { return z.Name == f.Member })
	if i < 0 {
		return fmt.Errorf("%s holds no %s", f.URL, f.Member)
	}
	rc, err := zr.File[i].Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return save(rc, dst, f, f.URL+"#"+f.Member)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
